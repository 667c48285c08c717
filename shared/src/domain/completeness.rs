//! Completeness: what the integrity check finds (gaps) and what the resync
//! does about them (jobs), in domain terms shared by every mode.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{RepoName, Timestamp};

/// What a gap or a resync is about: one repository, or one organisation's teams.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum Target {
    Repo(RepoName),
    Org(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repo(r) => write!(f, "repo:{r}"),
            Self::Org(o) => write!(f, "org:{o}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum GapKind {
    Pulls,
    Reviews,
    Teams,
    Branches,
    WorkflowRuns,
    WorkflowJobs,
    Deployments,
    /// Commits of the default branch.
    Commits,
    /// An organisation's repositories.
    Repos,
}

impl GapKind {
    /// Every kind a repository's resync can repair.
    pub const REPO: [GapKind; 7] = [
        Self::Pulls,
        Self::Reviews,
        Self::Branches,
        Self::WorkflowRuns,
        Self::WorkflowJobs,
        Self::Deployments,
        Self::Commits,
    ];

    /// The kind as it is written in gap messages and lock keys (`workflow_runs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pulls => "pulls",
            Self::Reviews => "reviews",
            Self::Teams => "teams",
            Self::Branches => "branches",
            Self::WorkflowRuns => "workflow_runs",
            Self::WorkflowJobs => "workflow_jobs",
            Self::Deployments => "deployments",
            Self::Commits => "commits",
            Self::Repos => "repos",
        }
    }
}

/// A difference between GitHub and the store, to be repaired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Gap {
    pub target: Target,
    pub kind: GapKind,
    /// Repair back to this time: pull requests updated before it are known
    /// good. None: walk everything.
    pub watermark: Option<Timestamp>,
    /// What differed, for people.
    pub reason: String,
}

impl Gap {
    /// The lock key of this gap's pending marker: `pending-gap:<target>:<kind>`,
    /// e.g. `pending-gap:repo:octo/hello:pulls`.
    pub fn pending_key(&self) -> String {
        format!("pending-gap:{}:{}", self.target, self.kind.as_str())
    }
}

/// At most one gap of each (target, kind) waits in the queue: while one
/// waits, its pending marker is held, the lock [`Gap::pending_key`] under a
/// fresh owner, for a limited time (a lost gap cannot block its kind for
/// longer). The owner travels with the gap, so that the dispatcher, once it
/// has taken the gap (its job launched, or its target busy), releases exactly
/// that marker; a gap that could not be queued has its marker released at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMarker {
    pub key: String,
    pub owner: String,
}

impl PendingMarker {
    pub fn of(gap: &Gap, owner: impl Into<String>) -> Self {
        Self { key: gap.pending_key(), owner: owner.into() }
    }
}

/// A gap as the queue hands it to the dispatcher: with its pending marker
/// when the queue keeps one (SQS); without on one machine, where the
/// in-process queue forgets a gap as soon as it is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedGap {
    pub gap: Gap,
    pub pending: Option<PendingMarker>,
}

/// A resync request: one target, the kinds to repair, from a watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncJob {
    /// Stable across restarts of the same job: its checkpoint is keyed by it.
    pub id: String,
    pub target: Target,
    pub kinds: Vec<GapKind>,
    pub watermark: Option<Timestamp>,
}

impl ResyncJob {
    /// Coalesce gaps of one target into one job: every kind, the oldest watermark.
    pub fn coalesce(id: String, gaps: &[Gap]) -> Option<Self> {
        let first = gaps.first()?;
        let mut kinds: Vec<GapKind> = gaps.iter().map(|g| g.kind).collect();
        kinds.sort();
        kinds.dedup();
        let watermark = if gaps.iter().any(|g| g.watermark.is_none()) {
            None
        } else {
            gaps.iter().filter_map(|g| g.watermark).min()
        };
        Some(Self { id, target: first.target.clone(), kinds, watermark })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A resync job's record, as `/api/integrity` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = Job))]
pub struct JobRecord {
    pub id: String,
    pub target: Target,
    pub kinds: Vec<GapKind>,
    pub watermark: Option<Timestamp>,
    pub state: JobState,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Entities written so far.
    pub written: u64,
    /// GitHub requests made so far.
    pub requests: u64,
    /// The same requests, per GitHub App installation.
    pub requests_by_installation: InstallationRequests,
    /// Items the job had to leave out, and why (a `null` node, a partial
    /// error): their gaps stay open for the next check. At most
    /// [`JobRecord::MAX_SKIPPED`] are kept.
    pub skipped: Vec<String>,
    pub error: Option<String>,
}

impl JobRecord {
    /// A job as the dispatcher records it before starting it.
    pub fn queued(job: &ResyncJob, at: Timestamp) -> Self {
        Self {
            id: job.id.clone(),
            target: job.target.clone(),
            kinds: job.kinds.clone(),
            watermark: job.watermark,
            state: JobState::Queued,
            created_at: at,
            started_at: None,
            finished_at: None,
            written: 0,
            requests: 0,
            requests_by_installation: InstallationRequests::default(),
            skipped: Vec::new(),
            error: None,
        }
    }

    /// The job started (the resync has its target's lock).
    #[must_use]
    pub fn running(self, at: Timestamp) -> Self {
        Self { state: JobState::Running, started_at: Some(at), finished_at: None, error: None, ..self }
    }

    /// How many skipped items a record keeps (the first ones).
    pub const MAX_SKIPPED: usize = 20;

    /// What the job did so far: entities written, GitHub requests made.
    #[must_use]
    pub fn progress(self, written: u64, requests: u64) -> Self {
        Self { written, requests, ..self }
    }

    /// The job's GitHub requests per installation.
    #[must_use]
    pub fn by_installation(self, requests_by_installation: InstallationRequests) -> Self {
        Self { requests_by_installation, ..self }
    }

    /// Items the job left out so far, and why.
    #[must_use]
    pub fn skipping(self, skipped: &[String]) -> Self {
        Self { skipped: skipped.iter().take(Self::MAX_SKIPPED).cloned().collect(), ..self }
    }

    /// The job ran to its end.
    #[must_use]
    pub fn succeeded(self, at: Timestamp) -> Self {
        Self { state: JobState::Succeeded, finished_at: Some(at), error: None, ..self }
    }

    /// The job ended (or could not start) with `error` (its chain, for people).
    #[must_use]
    pub fn failed(self, at: Timestamp, error: impl Into<String>) -> Self {
        Self { state: JobState::Failed, finished_at: Some(at), error: Some(error.into()), ..self }
    }
}

/// GitHub requests per installation: the account login a GitHub App
/// installation is on (the owner of the repositories and organisations it
/// reads), or `token` for a token (`GITHUB_TOKEN`). Every attempt
/// counts, retries included; a `304 Not Modified` counts too (GitHub does not
/// charge it to the rate limit). An installation that made none is absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(example = json!({"octo-org": 12, "other-org": 3})))]
pub struct InstallationRequests(pub BTreeMap<String, u64>);

impl InstallationRequests {
    /// The name of a token's one budget (`GITHUB_TOKEN`).
    pub const TOKEN: &'static str = "token";

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Requests in all.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, installation: &str) -> u64 {
        self.0.get(installation).copied().unwrap_or(0)
    }
}

impl<K: Into<String>> FromIterator<(K, u64)> for InstallationRequests {
    fn from_iter<I: IntoIterator<Item = (K, u64)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// One run of the integrity check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct CheckRun {
    pub id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub repos_compared: u64,
    pub orgs_compared: u64,
    pub gaps: Vec<Gap>,
    /// Failed webhook deliveries asked to be redelivered.
    pub redelivered: u64,
    /// GitHub requests the check made.
    pub requests: u64,
    /// The same requests, per GitHub App installation.
    pub requests_by_installation: InstallationRequests,
    pub dry_run: bool,
    /// Targets that matched GitHub: the watermark of their next gap.
    #[serde(skip)]
    pub verified: Vec<Target>,
    pub error: Option<String>,
    /// The search index compared with the store; absent without a search
    /// index (or in checks from before the comparison existed).
    pub search: Option<super::search_check::SearchComparison>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Utc};

    #[test]
    fn a_job_record_moves_through_its_states() {
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        let job = ResyncJob {
            id: "j".into(),
            target: Target::Org("octo".into()),
            kinds: vec![GapKind::Teams],
            watermark: None,
        };
        let queued = JobRecord::queued(&job, at(1));
        assert_eq!((queued.state, queued.created_at, queued.started_at), (JobState::Queued, at(1), None));
        let running = queued.running(at(2));
        assert_eq!((running.state, running.started_at, running.finished_at), (JobState::Running, Some(at(2)), None));
        let done = running.clone().progress(7, 3).succeeded(at(3));
        assert_eq!(
            (done.state, done.finished_at, done.written, done.requests),
            (JobState::Succeeded, Some(at(3)), 7, 3)
        );
        let failed = running.failed(at(4), "boom");
        assert_eq!(
            (failed.state, failed.finished_at, failed.error.as_deref()),
            (JobState::Failed, Some(at(4)), Some("boom"))
        );
        assert_eq!(failed.created_at, at(1));
        assert_eq!(
            Gap { target: job.target, kind: GapKind::WorkflowRuns, watermark: None, reason: String::new() }
                .pending_key(),
            "pending-gap:org:octo:workflow_runs"
        );
    }
}

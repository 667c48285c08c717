//! Metrics: the plain rows the store hands to the metrics service, and the JSON
//! shapes `/api/metrics/*` returns. Every definition is in `shared/docs/metrics.md`.

use serde::Serialize;

use crate::domain::{CheckRun, Gap, JobRecord};
use crate::domain::{PrState, RepoName, RunStatus, Timestamp};

// Rows: what `Store` returns for metrics, one per entity, no computation.

/// A pull request with what its review history says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PullMetricRow {
    pub repo: RepoName,
    pub number: u64,
    pub author: Option<String>,
    pub state: PrState,
    pub created_at: Timestamp,
    pub merged_at: Option<Timestamp>,
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    /// The earliest `submitted_at` of a review (any state but pending) by
    /// someone other than the pull request's author.
    pub first_review_at: Option<Timestamp>,
    /// Reviews whose current state is `changes_requested` (a dismissed one is `dismissed`).
    pub changes_requested: u32,
}

/// What a workflow run and a job share for the CI metrics: what they are
/// grouped by, and how they ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CiFacts {
    pub repo: RepoName,
    pub workflow: Option<String>,
    pub branch: Option<String>,
    /// A job's is the actor of its run, when the run is known.
    pub actor: Option<String>,
    pub status: RunStatus,
    pub conclusion: Option<String>,
}

impl CiFacts {
    pub fn completed(&self) -> bool {
        self.status == RunStatus::Completed
    }
    pub fn failed(&self) -> bool {
        self.completed() && self.conclusion.as_deref() == Some("failure")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunMetricRow {
    pub ci: CiFacts,
    pub created_at: Timestamp,
    pub run_started_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobMetricRow {
    pub ci: CiFacts,
    pub labels: Vec<String>,
    pub os: Option<String>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentMetricRow {
    pub id: i64,
    pub repo: RepoName,
    pub environment: Option<String>,
    pub created_at: Timestamp,
    /// The state of its latest status among `success`, `failure` and `error`
    /// (latest by status `created_at`, then id); None if it has none of them.
    pub outcome: Option<String>,
}

/// A present member of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMembershipRow {
    pub org: String,
    pub team_slug: String,
    pub login: String,
}

/// The newest delivery the ledger holds for a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoDeliveryRow {
    pub repo: String,
    pub last_received_at: Timestamp,
}

// Responses.

/// The window a metric covers: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}

/// Nearest-rank percentiles of a set of whole numbers (seconds, lines, rounds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Distribution {
    pub count: u64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub p95: Option<i64>,
}

/// A count in one ISO week (`2026-W07`, starting Monday `week_start`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct WeekCount {
    pub week: String,
    pub week_start: String,
    pub count: u64,
}

/// Open pull requests by age at the end of the window (lower bounds inclusive).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct OpenByAge {
    pub total: u64,
    pub lt_1d: u64,
    pub d1_to_3: u64,
    pub d3_to_7: u64,
    pub d7_to_30: u64,
    pub gt_30d: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullFlowGroup {
    /// The group (repository, author login or `ORG/TEAM`); null for "everything"
    /// without `group_by`, or for pull requests outside every group.
    pub key: Option<String>,
    /// Pull requests merged in the window.
    pub merged: u64,
    /// Merged pull requests per ISO week of `merged_at`, every week of the window.
    pub throughput: Vec<WeekCount>,
    pub cycle_time_seconds: Distribution,
    pub time_to_first_review_seconds: Distribution,
    /// Pull requests created in the window without any review by someone else.
    pub unreviewed: u64,
    pub review_rounds: Distribution,
    pub size_lines: Distribution,
    pub open_by_age: OpenByAge,
    /// With `interval`: the figures per bucket (every bucket of the window, oldest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<PullFlowBucket>>,
    /// With `compare=previous`: the same figures over the window of the same
    /// length just before (`previous_window`), for this group's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PullFlowFigures>,
}

/// The pull request figures of a window, as in a group's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullFlowFigures {
    pub merged: u64,
    /// Pull requests created in the window.
    pub opened: u64,
    pub cycle_time_seconds: Distribution,
    pub time_to_first_review_seconds: Distribution,
    pub unreviewed: u64,
    pub review_rounds: Distribution,
    pub size_lines: Distribution,
}

/// One bucket of a series: a day, or an ISO week (`start` its Monday), cut to the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// The bucket's first day (`YYYY-MM-DD`; a week's Monday).
    pub start: String,
    /// The part of the window it covers: `since` inclusive, `until` exclusive.
    pub window: Window,
}

/// A bucket's pull request figures (definitions as for the totals).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullFlowBucket {
    pub bucket: Bucket,
    pub figures: PullFlowFigures,
}

/// A pull request in the slowest-first-review or stale list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullWait {
    pub repo: String,
    pub number: u64,
    pub author: Option<String>,
    pub created_at: Timestamp,
    /// Its first review by someone else, if any.
    pub first_review_at: Option<Timestamp>,
    /// Slowest first reviews: `first_review_at − created_at`, or, still waiting,
    /// `now − created_at`. Stale: its age at the end of the window (or now).
    pub seconds: i64,
    /// Open and not reviewed by anyone else yet.
    pub waiting: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullFlowMetrics {
    pub window: Window,
    pub group_by: Option<String>,
    pub groups: Vec<PullFlowGroup>,
    /// With `interval`: `week` or `day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// With `compare=previous`: the window the `previous` figures cover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_window: Option<Window>,
    /// With `top=N`: the N pull requests created in the window that waited
    /// longest for a first review by someone else (reviewed, or open and still
    /// waiting), longest first; over every group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_first_reviews: Option<Vec<PullWait>>,
    /// With `top=N`: the N oldest pull requests open now and created before
    /// `until`, oldest first; over every group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<Vec<PullWait>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct RunStats {
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
    /// failed ÷ completed; null without completed runs.
    pub failure_rate: Option<f64>,
    pub duration_seconds: Distribution,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct JobStats {
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
    pub failure_rate: Option<f64>,
    pub queue_seconds: Distribution,
    pub duration_seconds: Distribution,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct CiGroup {
    pub key: Option<String>,
    /// Null when grouped by runner or OS (runs have no runner; jobs do).
    pub runs: Option<RunStats>,
    pub jobs: JobStats,
    /// With `interval`: the figures per bucket (every bucket of the window, oldest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<CiBucket>>,
    /// With `compare=previous`: the same figures over the previous window, for this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<CiFigures>,
}

/// The CI figures of a window, as in a group's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct CiFigures {
    pub runs: Option<RunStats>,
    pub jobs: JobStats,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct CiBucket {
    pub bucket: Bucket,
    pub figures: CiFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct CiMetrics {
    pub window: Window,
    pub group_by: Option<String>,
    pub groups: Vec<CiGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_window: Option<Window>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DoraGroup {
    /// Set when grouped by repository.
    pub repo: Option<String>,
    pub environment: Option<String>,
    /// Deployments created in the window.
    pub deployments: u64,
    pub successful: u64,
    pub failed: u64,
    /// Deployments with an outcome (success, failure or error).
    pub with_outcome: u64,
    pub change_failure_rate: Option<f64>,
    /// Successful deployments per ISO week of their creation, every week of the window.
    pub deployment_frequency: Vec<WeekCount>,
    /// Successful deployments per week over the window's length (days ÷ 7).
    pub deployments_per_week: f64,
    pub lead_time_seconds: Distribution,
    /// Merged pull requests with no successful deployment at or after their merge.
    pub undeployed: u64,
    /// With `interval`: the figures per bucket (deployments by `created_at`,
    /// lead time and undeployed by `merged_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<DoraBucket>>,
    /// With `compare=previous`: the same figures over the previous window, for this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<DoraFigures>,
}

/// The DORA figures of a window, as in a group's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DoraFigures {
    pub deployments: u64,
    pub successful: u64,
    pub failed: u64,
    pub with_outcome: u64,
    pub change_failure_rate: Option<f64>,
    /// `successful ÷ (the window's or bucket's length in days ÷ 7)`.
    pub deployments_per_week: f64,
    pub lead_time_seconds: Distribution,
    pub undeployed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DoraBucket {
    pub bucket: Bucket,
    pub figures: DoraFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DoraMetrics {
    pub window: Window,
    pub group_by: Option<String>,
    pub groups: Vec<DoraGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_window: Option<Window>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct JobCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct RepoHealth {
    pub repo: String,
    pub last_webhook_at: Option<Timestamp>,
    /// When the latest integrity check finished (a check compares every tracked repository).
    pub last_check_at: Option<Timestamp>,
    /// When this repository last matched GitHub in a check.
    pub verified_at: Option<Timestamp>,
    /// Gaps the latest check found for this repository.
    pub open_gaps: Vec<Gap>,
    /// Resync jobs of this repository by state (among the most recent 1,000 jobs).
    pub jobs: JobCounts,
    pub last_job: Option<JobRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct DataHealth {
    pub last_check: Option<CheckRun>,
    pub repos: Vec<RepoHealth>,
}

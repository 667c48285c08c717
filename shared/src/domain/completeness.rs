//! Completeness: what the integrity check finds (gaps) and what the resync
//! does about them (jobs), in domain terms shared by every mode.

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
            error: None,
        }
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
    pub dry_run: bool,
    /// Targets that matched GitHub: the watermark of their next gap.
    #[serde(skip)]
    pub verified: Vec<Target>,
    pub error: Option<String>,
}

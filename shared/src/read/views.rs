//! What the read API returns: JSON shapes, computed from the store. Each
//! entity has one shape: the API shows the domain type itself (a pull
//! request, a review, a commit, a branch, fields it does not show skipped), or a view
//! embeds it with what is derived from it (a run's queue time) or read
//! beside it (a pull request's reviews).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Branch, PullRequest, Review, Timestamp, WorkflowRun};
use crate::domain::{DeliveryId, DeliveryStatus, EventName, HookId, RepoName, RunStatus};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = Repo))]
pub struct RepoView {
    pub full_name: RepoName,
    pub default_branch: Option<String>,
    pub private: Option<bool>,
    pub archived: Option<bool>,
    pub branches: Vec<Branch>,
    pub last_activity_at: Option<Timestamp>,
}

// A pull request with its reviews (`/api/pulls/{owner}/{repo}/{number}`); the
// list shows `PullRequest` itself. (No doc comment: it would become the schema's.)
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct PullDetail {
    #[serde(flatten)]
    pub pull: PullRequest,
    pub reviews: Vec<Review>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = Team))]
pub struct TeamView {
    pub org: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub privacy: Option<String>,
    pub parent: Option<String>,
    pub members: Vec<String>,
}

/// A workflow run with the times derived from its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = WorkflowRun))]
pub struct WorkflowRunView {
    #[serde(flatten)]
    #[cfg_attr(feature = "api", schema(inline))]
    pub run: WorkflowRun,
    /// Seconds from the run's creation to its start (`run_started_at − created_at`).
    pub queue_seconds: Option<i64>,
    /// Seconds from start to completion (`updated_at − run_started_at`), for completed runs.
    pub duration_seconds: Option<i64>,
}

impl From<WorkflowRun> for WorkflowRunView {
    fn from(run: WorkflowRun) -> Self {
        let queue_seconds = run.run_started_at.map(|s| (s - run.created_at).num_seconds().max(0));
        let duration_seconds = match (run.status, run.run_started_at) {
            (RunStatus::Completed, Some(s)) => Some((run.updated_at - s).num_seconds().max(0)),
            _ => None,
        };
        Self { run, queue_seconds, duration_seconds }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = Delivery))]
pub struct DeliveryView {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
    pub event: EventName,
    pub action: Option<String>,
    pub repo: Option<RepoName>,
    pub org: Option<String>,
    pub received_at: Timestamp,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub changes: u32,
    pub body_bytes: u64,
}

/// Counts for `/api/health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct StoreStats {
    /// Deliveries by status (`stored`, `ignored`, `failed`, `pending`).
    pub deliveries: BTreeMap<String, u64>,
    /// Ignored deliveries by event type: what GitHub sends that Octoscope does not keep.
    pub ignored_events: BTreeMap<String, u64>,
    pub last_delivery_at: Option<Timestamp>,
    pub repositories: u64,
    pub pull_requests: u64,
    pub teams: u64,
    pub workflow_runs: u64,
}

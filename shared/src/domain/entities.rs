//! The entities Octoscope keeps. They carry GitHub's own timestamps; every
//! store write is last-writer-wins on them (see [`Change`]).

use serde::{Deserialize, Serialize};

use super::ids::{RepoName, Timestamp};

/// Pull request state as Octoscope counts it (GitHub GraphQL's `PullRequestState`):
/// `closed` means closed without merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum PrState {
    Open,
    Closed,
    Merged,
}

impl PrState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Merged => "merged",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "closed" => Self::Closed,
            "merged" => Self::Merged,
            _ => return None,
        })
    }
    /// Tie-break for two writes with the same `updated_at`: a merge or close
    /// is never undone by an equally-timed earlier state.
    pub fn rank(self) -> i64 {
        match self {
            Self::Open => 0,
            Self::Closed => 1,
            Self::Merged => 2,
        }
    }
}

/// A repository. `version` is GitHub's `updated_at` (None for a repository
/// only known by name, e.g. from an installation event).
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    pub full_name: RepoName,
    pub id: Option<i64>,
    pub default_branch: Option<String>,
    pub private: Option<bool>,
    pub archived: Option<bool>,
    pub deleted: bool,
    pub version: Option<Timestamp>,
    /// The time of the activity this write reports (a PR update, a push, a run);
    /// the store keeps the newest.
    pub activity_at: Option<Timestamp>,
}

impl Repository {
    /// A repository known by name only (no GitHub timestamp): tracked, and
    /// never overriding what a versioned write said.
    pub fn named(full_name: RepoName) -> Self {
        Self {
            full_name,
            id: None,
            default_branch: None,
            private: None,
            archived: None,
            deleted: false,
            version: None,
            activity_at: None,
        }
    }
}

// A branch. The read API shows its name and head within its repository.
// (Plain comments on the fields the API shows: a doc comment would become
// their schema's description.)
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Branch {
    #[serde(skip)]
    pub repo: RepoName,
    pub name: String,
    // None when the branch was deleted.
    pub head_sha: Option<String>,
    #[serde(skip)]
    pub deleted: bool,
    /// When the push/create/delete happened (the repository's `pushed_at`).
    #[serde(skip)]
    pub version: Timestamp,
}

// A pull request. The read API shows it as it is, but for GitHub's id and the
// head commit (plain comments here: a doc comment would become its schema's).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = Pull))]
pub struct PullRequest {
    pub repo: RepoName,
    pub number: u64,
    #[serde(skip)]
    pub id: Option<i64>,
    pub title: String,
    pub state: PrState,
    pub draft: bool,
    pub author: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    // Size fields are absent from the pull request embedded in review events;
    // None keeps what the store has.
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changed_files: Option<i64>,
    pub commits: Option<i64>,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    pub requested_teams: Vec<String>,
    pub base_ref: Option<String>,
    pub head_ref: Option<String>,
    #[serde(skip)]
    pub head_sha: Option<String>,
    // The description, at most `search_docs::MAX_TEXT_CHARS` characters (None:
    // this write does not know it; the store keeps what it has). Kept for
    // search; the read API does not show it.
    #[serde(skip)]
    pub body: Option<String>,
}

/// Which of a pull request's lists a write knows. GitHub leaves lists out of
/// the pull request some events embed; a list a write does not know keeps
/// what the store has (as sizes do by being None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListsKnown {
    pub labels: bool,
    pub requested_reviewers: bool,
    pub requested_teams: bool,
}

impl ListsKnown {
    pub const ALL: Self = Self { labels: true, requested_reviewers: true, requested_teams: true };

    /// The lists of `pull` this write knows (labels, requested reviewers,
    /// requested teams), each None where the store keeps its own.
    pub fn of(self, pull: &PullRequest) -> [Option<&[String]>; 3] {
        fn known(k: bool, list: &[String]) -> Option<&[String]> {
            k.then_some(list)
        }
        [
            known(self.labels, &pull.labels),
            known(self.requested_reviewers, &pull.requested_reviewers),
            known(self.requested_teams, &pull.requested_teams),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    Pending,
}

impl ReviewState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "approved" => Self::Approved,
            "changes_requested" => Self::ChangesRequested,
            "commented" => Self::Commented,
            "dismissed" => Self::Dismissed,
            "pending" => Self::Pending,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Commented => "commented",
            Self::Dismissed => "dismissed",
            Self::Pending => "pending",
        }
    }
    /// A dismissal keeps the review's `submitted_at`; it must win the tie.
    pub fn rank(self) -> i64 {
        match self {
            Self::Pending => 0,
            Self::Dismissed => 2,
            _ => 1,
        }
    }
}

// A review. The read API shows it within its pull request, without the pull
// request's key and the commit reviewed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Review {
    #[serde(skip)]
    pub repo: RepoName,
    #[serde(skip)]
    pub pr_number: u64,
    pub id: i64,
    pub author: Option<String>,
    pub state: ReviewState,
    pub submitted_at: Option<Timestamp>,
    #[serde(skip)]
    pub commit_id: Option<String>,
    // The review's text, as a pull request's body (bounded; None keeps what the
    // store has). Kept for search; the read API does not show it.
    #[serde(skip)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewComment {
    pub repo: RepoName,
    pub pr_number: u64,
    pub id: i64,
    pub review_id: Option<i64>,
    pub author: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted: bool,
}

/// Team metadata. Webhooks carry no team timestamp, so `version` is the time
/// Octoscope received the event (or read the team, for a resync).
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub org: String,
    pub slug: String,
    pub id: Option<i64>,
    pub name: String,
    pub description: Option<String>,
    pub privacy: Option<String>,
    pub parent_slug: Option<String>,
    pub deleted: bool,
    pub version: Timestamp,
}

/// One (set, member) pair of a set-valued state: team members, org members,
/// repository collaborators. `present: false` is a tombstone, so a late "added"
/// cannot resurrect a member removed after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub login: String,
    pub role: Option<String>,
    pub present: bool,
    pub version: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Commit {
    pub repo: RepoName,
    pub sha: String,
    pub message: String,
    pub author_login: Option<String>,
    pub author_name: Option<String>,
    pub committed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum RunStatus {
    Queued,
    InProgress,
    Completed,
}

impl RunStatus {
    /// GitHub's many pre-start statuses (requested, waiting, pending, queued) are one here.
    pub fn parse(s: &str) -> Self {
        match s {
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            _ => Self::Queued,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }
    pub fn rank(self) -> i64 {
        match self {
            Self::Queued => 0,
            Self::InProgress => 1,
            Self::Completed => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(as = WorkflowRunFields))]
pub struct WorkflowRun {
    pub repo: RepoName,
    pub id: i64,
    pub name: Option<String>,
    pub workflow_id: Option<i64>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
    pub event: Option<String>,
    pub status: RunStatus,
    pub conclusion: Option<String>,
    pub run_number: Option<i64>,
    pub run_attempt: Option<i64>,
    pub actor: Option<String>,
    pub created_at: Timestamp,
    pub run_started_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowJob {
    pub repo: RepoName,
    pub id: i64,
    pub run_id: i64,
    pub name: String,
    pub workflow_name: Option<String>,
    pub head_branch: Option<String>,
    pub status: RunStatus,
    pub conclusion: Option<String>,
    pub labels: Vec<String>,
    pub runner_name: Option<String>,
    pub runner_group: Option<String>,
    /// Derived from the runner labels: `linux`, `windows`, `macos`, or None.
    pub os: Option<String>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

impl WorkflowJob {
    /// A job carries no `updated_at`; its newest own timestamp stands in.
    pub fn version(&self) -> Option<Timestamp> {
        self.completed_at.or(self.started_at).or(self.created_at)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub repo: RepoName,
    pub id: i64,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub environment: Option<String>,
    pub task: Option<String>,
    pub creator: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    pub repo: RepoName,
    pub deployment_id: i64,
    pub id: i64,
    pub state: String,
    pub environment: Option<String>,
    pub creator: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One write to the store. Every variant is applied last-writer-wins on its
/// GitHub timestamp (ties broken by a state rank where the entity has one), so
/// applying the same set of changes in any order gives the same state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Repository(Repository),
    /// A repository renamed or transferred (the same GitHub `id`): everything
    /// the store holds under `from` moves to `to`, and `from` stays an alias
    /// of `to` (filters accept it; a late write under it lands on `to`).
    RepositoryMoved {
        id: Option<i64>,
        from: RepoName,
        to: RepoName,
        /// When GitHub says it happened (or when it was found).
        at: Timestamp,
    },
    Branch(Branch),
    PullRequest {
        pull: Box<PullRequest>,
        known: ListsKnown,
    },
    Review(Review),
    ReviewComment(ReviewComment),
    Team(Team),
    TeamMember {
        org: String,
        team_slug: String,
        member: Membership,
    },
    OrgMember {
        org: String,
        member: Membership,
    },
    Collaborator {
        repo: RepoName,
        member: Membership,
    },
    /// Commits are immutable: inserted once, with the branch they were pushed to.
    Commit {
        commit: Commit,
        branch: Option<String>,
        pushed_at: Option<Timestamp>,
    },
    WorkflowRun(WorkflowRun),
    WorkflowJob(WorkflowJob),
    Deployment(Deployment),
    DeploymentStatus(DeploymentStatus),
}

impl Change {
    /// A pull request write that knows all its lists.
    pub fn pull_request(pull: PullRequest) -> Self {
        Self::PullRequest { pull: Box::new(pull), known: ListsKnown::ALL }
    }
}

/// What a batch of changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Writes that changed the store.
    pub applied: u32,
    /// Writes skipped because the store already held newer (or the same) state.
    pub skipped: u32,
}

//! Domain types: parsed identifiers and the entities Octoscope keeps.
//!
//! Identifiers are newtypes with a `parse()` that refuses bad input, so that the
//! rest of the code never handles an unchecked repository name or delivery id.
//! Entities carry GitHub's own timestamps; every store write is last-writer-wins
//! on them (see [`Change`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC. GitHub's timestamps have second precision.
pub type Timestamp = DateTime<Utc>;

/// A value that did not parse into one of the domain's identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {why}")]
pub struct ParseError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl ParseError {
    fn new(what: &'static str, value: &str, why: &'static str) -> Self {
        // Bound what we echo back: the value may be hostile input.
        let value = value.chars().take(80).collect();
        Self { what, value, why }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `OWNER/NAME` of a repository, as GitHub spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let Some((owner, name)) = s.split_once('/') else {
            return Err(ParseError::new("repository", s, "expected OWNER/NAME"));
        };
        if !valid_segment(owner) || !valid_segment(name) {
            return Err(ParseError::new(
                "repository",
                s,
                "owner and name are 1-100 characters of letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map(|(o, _)| o).unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.0.split_once('/').map(|(_, n)| n).unwrap_or_default()
    }
}

impl FromStr for RepoName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl TryFrom<String> for RepoName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.0
    }
}
impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! header_token {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $extra:pat) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                if s.is_empty() || s.len() > $max {
                    return Err(ParseError::new($what, s, concat!("expected 1-", stringify!($max), " characters")));
                }
                if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, $extra)) {
                    return Err(ParseError::new($what, s, "contains characters GitHub never sends here"));
                }
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

header_token!(
    /// `X-GitHub-Delivery`: a GUID per delivery, kept by GitHub's redeliveries.
    DeliveryId, "X-GitHub-Delivery", 100, b'-' | b'_'
);
header_token!(
    /// `X-GitHub-Hook-ID`: which webhook configuration sent the delivery.
    HookId, "X-GitHub-Hook-ID", 40, b'-' | b'_'
);
header_token!(
    /// `X-GitHub-Event`: the event type, e.g. `pull_request`.
    EventName, "X-GitHub-Event", 64, b'_' | b'-' | b'.'
);

impl HookId {
    /// Deliveries without `X-GitHub-Hook-ID` (older GitHub Enterprise Server
    /// versions) share this hook id in the ledger.
    pub fn unknown() -> Self {
        Self("0".to_owned())
    }
}

/// The ledger key: exactly-once effect is per (hook, delivery).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Claimed, not yet finished (a crash here lets a redelivery retry it).
    Pending,
    /// Normalised and written to the store.
    Stored,
    /// Archived and acknowledged, but Octoscope keeps nothing from it (an event type it does not track).
    Ignored,
    /// Archived, but it could not be normalised; `replay` can retry it after an upgrade.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "stored" => Self::Stored,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A delivery the ledger is asked to claim, before any effect.
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    pub key: DeliveryKey,
    pub event: EventName,
    pub action: Option<String>,
    pub repo: Option<RepoName>,
    pub org: Option<String>,
    pub received_at: Timestamp,
    pub body_bytes: u64,
}

/// The final outcome written with a delivery's effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub changes: u32,
}

/// A raw delivery as received: what the archive keeps and `replay` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDelivery {
    pub key: DeliveryKey,
    pub event: EventName,
    pub received_at: Timestamp,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Pull request state as Octoscope counts it (GitHub GraphQL's `PullRequestState`):
/// `closed` means closed without merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub repo: RepoName,
    pub name: String,
    /// None when the branch was deleted.
    pub head_sha: Option<String>,
    pub deleted: bool,
    /// When the push/create/delete happened (the repository's `pushed_at`).
    pub version: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub repo: RepoName,
    pub number: u64,
    pub id: Option<i64>,
    pub title: String,
    pub state: PrState,
    pub draft: bool,
    pub author: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    /// Size fields are absent from the pull request embedded in review events;
    /// None keeps what the store has.
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changed_files: Option<i64>,
    pub commits: Option<i64>,
    pub labels: Option<Vec<String>>,
    pub requested_reviewers: Option<Vec<String>>,
    pub requested_teams: Option<Vec<String>>,
    pub base_ref: Option<String>,
    pub head_ref: Option<String>,
    pub head_sha: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub repo: RepoName,
    pub pr_number: u64,
    pub id: i64,
    pub author: Option<String>,
    pub state: ReviewState,
    pub submitted_at: Option<Timestamp>,
    pub commit_id: Option<String>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub repo: RepoName,
    pub sha: String,
    pub message: String,
    pub author_name: Option<String>,
    pub author_login: Option<String>,
    pub committed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq)]
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
    Branch(Branch),
    PullRequest(Box<PullRequest>),
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

/// What a batch of changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Writes that changed the store.
    pub applied: u32,
    /// Writes skipped because the store already held newer (or the same) state.
    pub skipped: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_parse_and_refuse() {
        // GIVEN well-formed and malformed names WHEN parsed THEN only OWNER/NAME passes
        let r = RepoName::parse("Codertocat/Hello-World").unwrap();
        assert_eq!((r.owner(), r.name()), ("Codertocat", "Hello-World"));
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "a/..", "a/b?x=1"] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn header_tokens_refuse_hostile_values() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(DeliveryId::parse("").is_err());
        assert!(DeliveryId::parse("a\nb").is_err());
        assert!(DeliveryId::parse(&"x".repeat(101)).is_err());
        assert!(HookId::parse("109948940").is_ok());
        assert!(EventName::parse("pull_request").is_ok());
        assert!(EventName::parse("pull request").is_err());
    }

    #[test]
    fn parse_error_names_the_field_and_bounds_the_echo() {
        let e = RepoName::parse(&"x".repeat(500)).unwrap_err();
        assert!(e.to_string().starts_with("repository"));
        assert!(e.to_string().len() < 250);
    }
}

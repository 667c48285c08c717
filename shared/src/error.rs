//! The errors that cross a port, in one place. Each knows whether trying
//! again can help (`is_retryable`): that drives a 5xx (GitHub redelivers)
//! versus a 2xx, an SQS batch item failure, and the batch job's exit code 75.

use crate::domain::{GapKind, Target, Timestamp};

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

/// A GitHub API failure. `is_retryable` says whether the same call can succeed
/// later (rate limits, 5xx, timeouts) or not (bad credentials, not found).
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// Primary or secondary rate limit: wait until `retry_at` (or longer).
    #[error("GitHub rate limit reached; retry after {retry_at}")]
    RateLimited { retry_at: Timestamp },
    /// 5xx, timeouts, connection failures that outlasted the adapter's own retries.
    #[error("GitHub is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 401/403 that is not a rate limit: the token or app lacks access.
    #[error("GitHub refused the credentials or permission: {0}")]
    Forbidden(String),
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// The GitHub App has no installation on the account that owns the
    /// repository or organisation asked about: only installing it there helps.
    #[error("the GitHub App is not installed on {owner}: install it on {owner} (or stop tracking its repositories)")]
    NotInstalled { owner: String },
    /// GitHub answered something the adapter did not expect (a GraphQL error, a bad shape).
    #[error("unexpected answer from GitHub")]
    Protocol(#[source] anyhow::Error),
}

impl GitHubError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

/// The webhook secrets could not be read (their store is down): the delivery
/// is refused with a retryable error, and GitHub's redelivery tries again.
#[derive(Debug, thiserror::Error)]
#[error("the webhook secret is unavailable")]
pub struct SecretUnavailable(#[source] pub anyhow::Error);

/// An error and its causes on one line, for the delivery log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

/// A resync that did not finish: another job holds its target (retry later), or
/// it failed (retryable when GitHub was unavailable or rate-limited).
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    /// Another job holds the target's lock: try later.
    #[error("{0} is being resynced by another job")]
    Locked(Target),
    #[error("resync of {target} failed")]
    Failed {
        target: Target,
        #[source]
        source: anyhow::Error,
    },
}

impl ResyncError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Locked(_) => true,
            Self::Failed { source, .. } => {
                source.downcast_ref::<GitHubError>().map(GitHubError::is_retryable).unwrap_or(true)
            }
        }
    }
}

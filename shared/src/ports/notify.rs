//! Notification ports (shared/docs/notifications.md): the rules, where
//! decided notifications go (a durable outbox on one machine, an SQS queue on
//! AWS), their log of attempts, what the decider reads from the store, and
//! the outbound HTTP transport.

use std::time::Duration;

use async_trait::async_trait;

use super::paging::{Page, PageRequest};
use crate::domain::{
    AfterAttempt, Attempt, Notification, NotificationFilter, NotificationId, RepoName, Rule, RuleEvent, RuleId,
    RuleStats, Timestamp, WorkflowRun,
};
use crate::error::StoreError;

/// The rules.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Create a rule, or replace the one with its id.
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError>;
    async fn get_rule(&self, id: &RuleId) -> Result<Option<Rule>, StoreError>;
    /// Every rule, oldest first.
    async fn list_rules(&self, page: &PageRequest) -> Result<Page<Rule>, StoreError>;
    /// Remove a rule; false when there was none. Its notifications stay in the log.
    async fn delete_rule(&self, id: &RuleId) -> Result<bool, StoreError>;
    /// The rules listening for `event` whose target is not disabled.
    async fn rules_for(&self, event: RuleEvent) -> Result<Vec<Rule>, StoreError>;
    /// Disable a rule's target (it answered `410 Gone`), with the reason shown.
    async fn disable_rule(&self, id: &RuleId, reason: &str) -> Result<(), StoreError>;
}

/// Where decided notifications go: durably, before the decision is acknowledged.
#[async_trait]
pub trait NotificationSink: Send + Sync {
    /// Keep each notification whose id is not already kept (a duplicate is
    /// left as it is: that is what makes one notification per rule and
    /// transition). Returns how many were new (a queue that cannot tell
    /// returns how many it sent).
    async fn enqueue(&self, notes: &[Notification]) -> Result<usize, StoreError>;
}

/// The notifications and their attempts: the sender's work list and the log.
#[async_trait]
pub trait NotificationLog: Send + Sync {
    /// Keep a notification that arrived from a queue (on AWS), unless its id
    /// is kept already; true when it was new.
    async fn admit(&self, note: &Notification) -> Result<bool, StoreError>;
    /// Pending notifications due at `now`, oldest first, at most `limit`;
    /// each is leased for `lease` so that another sender does not take it.
    async fn take_due(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<Notification>, StoreError>;
    async fn get_notification(&self, id: &NotificationId) -> Result<Option<Notification>, StoreError>;
    /// Record an attempt and what follows it (a notification that is no
    /// longer pending is not changed, and the attempt is still logged).
    async fn record_attempt(&self, attempt: &Attempt, next: &AfterAttempt) -> Result<(), StoreError>;
    /// The log, newest first.
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError>;
    /// A notification's attempts, in order.
    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError>;
    /// A rule's notifications created since `since`, by status.
    async fn rule_stats(&self, rule: &RuleId, since: Timestamp) -> Result<RuleStats, StoreError>;
}

/// What the decider reads from the store to describe a transition.
#[async_trait]
pub trait TransitionFacts: Send + Sync {
    /// The head the store holds for a branch (before a change is applied).
    async fn branch_head(&self, repo: &RepoName, branch: &str) -> Result<Option<String>, StoreError>;
    /// The conclusion of the newest completed run of the same workflow on
    /// the same branch created before `run` (None: there is none).
    async fn previous_conclusion(&self, run: &WorkflowRun) -> Result<Option<String>, StoreError>;
    /// Whether `login` is a member of `org`'s team `team_slug`.
    async fn is_team_member(&self, org: &str, team_slug: &str, login: &str) -> Result<bool, StoreError>;
}

/// An outbound request: a POST of a JSON body.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub url: String,
    /// Header names and values (signatures, authorisation). Values may be
    /// secret: a transport never logs them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response: the status and up to a few KB of the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL or the address it resolves to is not allowed (private,
    /// loopback, link-local, metadata; or not https): retrying cannot help.
    #[error("target refused: {0}")]
    Refused(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// DNS, connect, TLS or a dropped connection: a retry may help.
    #[error("could not reach the target")]
    Unreachable(#[source] anyhow::Error),
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

/// POSTs a notification to a target: HTTPS with public addresses only
/// (checked again against the address actually connected), unless private
/// targets are allowed.
#[async_trait]
pub trait NotifyTransport: Send + Sync {
    async fn post(&self, req: &Outbound) -> Result<Answer, SendError>;
}

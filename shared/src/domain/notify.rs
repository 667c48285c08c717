//! Notifications (shared/docs/notifications.md): rules that say which
//! transitions matter and where to tell people, the transitions Octoscope
//! sees (from webhooks, and `late` from the integrity check's resync), and
//! the notifications decided from them with every attempt to send each.
//!
//! Exactly one notification per rule and transition: a transition has a
//! stable key (what happened, not which delivery said so), and a
//! notification's id is derived from (rule, transition key), so duplicates,
//! redeliveries, resyncs and retries all name the same notification.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{RepoName, Timestamp};

/// What a rule listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum RuleEvent {
    /// A branch head changed (before/after sha, the commits pushed).
    #[serde(rename = "branch.moved")]
    BranchMoved,
    #[serde(rename = "pull_request.opened")]
    PullRequestOpened,
    #[serde(rename = "pull_request.merged")]
    PullRequestMerged,
    /// A workflow run on a branch concluded in failure (`broke`: the previous
    /// run of that workflow on that branch succeeded).
    #[serde(rename = "workflow_run.failed")]
    WorkflowRunFailed,
    /// A workflow run succeeded after the previous one on its branch failed.
    #[serde(rename = "workflow_run.recovered")]
    WorkflowRunRecovered,
    #[serde(rename = "deployment.failed")]
    DeploymentFailed,
    /// Scheduled: an open, non-draft pull request with no review after N hours.
    #[serde(rename = "review.pickup_breached")]
    ReviewPickupBreached,
    /// Scheduled: job queue time p90 by runner label over the last hour above a threshold.
    #[serde(rename = "ci.queue_time_regressed")]
    CiQueueTimeRegressed,
    /// The integrity check found gaps (the data itself is in doubt).
    #[serde(rename = "integrity.gaps_found")]
    IntegrityGapsFound,
    /// A resync job failed.
    #[serde(rename = "resync.failed")]
    ResyncFailed,
    /// "Send test": the rule's target is sent a test message.
    #[serde(rename = "test")]
    Test,
}

impl RuleEvent {
    /// Every event a rule may name (not [`RuleEvent::Test`], which only "send test" makes).
    pub const RULES: [RuleEvent; 10] = [
        Self::BranchMoved,
        Self::PullRequestOpened,
        Self::PullRequestMerged,
        Self::WorkflowRunFailed,
        Self::WorkflowRunRecovered,
        Self::DeploymentFailed,
        Self::ReviewPickupBreached,
        Self::CiQueueTimeRegressed,
        Self::IntegrityGapsFound,
        Self::ResyncFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BranchMoved => "branch.moved",
            Self::PullRequestOpened => "pull_request.opened",
            Self::PullRequestMerged => "pull_request.merged",
            Self::WorkflowRunFailed => "workflow_run.failed",
            Self::WorkflowRunRecovered => "workflow_run.recovered",
            Self::DeploymentFailed => "deployment.failed",
            Self::ReviewPickupBreached => "review.pickup_breached",
            Self::CiQueueTimeRegressed => "ci.queue_time_regressed",
            Self::IntegrityGapsFound => "integrity.gaps_found",
            Self::ResyncFailed => "resync.failed",
            Self::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::RULES.into_iter().chain([Self::Test]).find(|e| e.as_str() == s)
    }

    /// Evaluated on a schedule (serve's integrity schedule, the
    /// integrity-check Lambda on AWS), not from changes.
    pub fn is_scheduled(self) -> bool {
        matches!(self, Self::ReviewPickupBreached | Self::CiQueueTimeRegressed)
    }
}

/// A rule's id: `rul_` and 20 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(String);

impl RuleId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes).expect("the system's random source");
        Self(format!("rul_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }

    pub fn parse(s: &str) -> Result<Self, super::ParseError> {
        prefixed_hex(s, "rul_", 20, "rule id", "expected rul_ and 20 hex digits").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `s` if it is `prefix` and `digits` lowercase hex digits; otherwise `why`.
fn prefixed_hex(
    s: &str,
    prefix: &str,
    digits: usize,
    what: &'static str,
    why: &'static str,
) -> Result<String, super::ParseError> {
    let hex = s
        .strip_prefix(prefix)
        .filter(|h| h.len() == digits && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    match hex {
        Some(_) => Ok(s.to_owned()),
        None => Err(super::ParseError::new(what, s, why)),
    }
}

/// A notification's id: `ntf_` and 26 hex digits of SHA-256(rule id, transition key).
/// It is also the Standard Webhooks `webhook-id`, so receivers can dedupe by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(String);

impl NotificationId {
    pub fn derive(rule: &RuleId, transition_key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(rule.as_str().as_bytes());
        h.update(b"\n");
        h.update(transition_key.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("ntf_{}", &hex[..26]))
    }

    pub fn parse(s: &str) -> Result<Self, super::ParseError> {
        prefixed_hex(s, "ntf_", 26, "notification id", "expected ntf_ and 26 hex digits").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NotificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule's optional filters; an absent filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct RuleFilters {
    /// `OWNER/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "api", schema(value_type = Option<String>))]
    pub repo: Option<RepoName>,
    /// A glob over the branch name (`main`, `release/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A GitHub login: the author of the pull request, the pusher, the run's actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `ORG/TEAM-SLUG`: the author is a member of the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A deployment environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Do not fire for transitions found late (by the integrity check's resync).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_late: bool,
    /// `review.pickup_breached`: hours without a review (default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// `ci.queue_time_regressed`: the p90 queue time, in seconds, above which it fires (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_seconds: Option<u64>,
    /// `ci.queue_time_regressed`: only this runner label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetSpec {
    /// An HTTPS endpoint, signed by the Standard Webhooks specification.
    Webhook { url: String },
    /// A Slack incoming webhook (a Block Kit message).
    Slack { url: String },
    /// GitHub's `repository_dispatch` on a repository (starts workflows with
    /// `on: repository_dispatch`), with the configured GitHub credentials.
    RepositoryDispatch {
        #[cfg_attr(feature = "api", schema(value_type = String))]
        repo: RepoName,
        /// The dispatch's `event_type` (default `octoscope`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<String>,
    },
}

impl TargetSpec {
    /// The URL a webhook or Slack target posts to.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Webhook { url } | Self::Slack { url } => Some(url),
            Self::RepositoryDispatch { .. } => None,
        }
    }
}

/// A target's signing secrets, `whsec_` + base64: the newest first; during a
/// rotation the previous one is kept as well and messages carry both
/// signatures. Never serialised: returned once, when created or rotated.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TargetSecrets(pub Vec<String>);

impl TargetSecrets {
    /// A new secret: `whsec_` + base64 of 24 random bytes.
    pub fn generate() -> Self {
        Self(vec![new_secret()])
    }

    /// Rotate: a new secret first, the current one still valid after it.
    pub fn rotated(&self) -> Self {
        let mut v = vec![new_secret()];
        v.extend(self.0.first().cloned());
        Self(v)
    }

    pub fn current(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }
}

impl std::fmt::Debug for TargetSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TargetSecrets([{} redacted])", self.0.len())
    }
}

fn new_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the system's random source");
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A rule: an event, filters, a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: RuleId,
    pub event: RuleEvent,
    pub filters: RuleFilters,
    pub target: TargetSpec,
    /// Signing secrets (webhook targets; empty for the others).
    pub secrets: TargetSecrets,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Why the target is disabled (it answered `410 Gone`), or None.
    pub disabled: Option<String>,
}

/// Something that happened, as a rule sees it. `key` names the transition
/// itself (`pull_request.merged:acme/api#42`), whichever delivery or resync
/// reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub event: RuleEvent,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// When it happened at GitHub (or when a scheduled rule found it).
    pub occurred_at: Timestamp,
    /// Found by the integrity check's resync, not by a webhook.
    pub late: bool,
    /// What the message says: the event's own fields (pull request number,
    /// title and URL, before/after sha and commits, run and conclusion…).
    pub data: serde_json::Value,
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A target answered 2xx.
    Delivered,
    /// Attempts used up, or the target refused it for good (4xx other than
    /// 408/429, 410 Gone, an address that is not allowed).
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|x| x.as_str() == s)
    }
}

/// A notification decided for a rule and a transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Notification {
    #[cfg_attr(feature = "api", schema(value_type = String))]
    pub id: NotificationId,
    #[cfg_attr(feature = "api", schema(value_type = String))]
    pub rule_id: RuleId,
    pub event: RuleEvent,
    pub transition_key: String,
    pub late: bool,
    /// The transition's fields (the message is built from them at send time).
    #[cfg_attr(feature = "api", schema(value_type = Object))]
    pub data: serde_json::Value,
    pub occurred_at: Timestamp,
    /// When it was decided.
    pub created_at: Timestamp,
    pub status: NotificationStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// The last attempt's error or HTTP status, in a few words.
    pub last_error: Option<String>,
}

impl Notification {
    /// A new, pending notification of `transition` for `rule`, due now.
    pub fn decide(rule: &RuleId, transition: &Transition, now: Timestamp) -> Self {
        Self {
            id: NotificationId::derive(rule, &transition.key),
            rule_id: rule.clone(),
            event: transition.event,
            transition_key: transition.key.clone(),
            late: transition.late,
            data: transition.data.clone(),
            occurred_at: transition.occurred_at,
            created_at: now,
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            last_error: None,
        }
    }
}

/// One attempt to send a notification: Repo Radar's action log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Attempt {
    #[cfg_attr(feature = "api", schema(value_type = String))]
    pub notification_id: NotificationId,
    /// 1, 2, … in order.
    pub number: u32,
    pub at: Timestamp,
    /// The target's HTTP status, or None when no response came.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// At most 200 characters of the response body (or of the error).
    pub excerpt: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterAttempt {
    Delivered,
    /// Try again at this time.
    Retry(Timestamp),
    /// Give up on this notification.
    Failed(String),
    /// Give up, and disable the rule's target with this reason (410 Gone).
    DisableTarget(String),
}

/// Which notifications to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub rule: Option<RuleId>,
    pub status: Option<NotificationStatus>,
}

/// Sent and failed notifications of a rule since some time: its recent success rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct RuleStats {
    pub delivered: u64,
    pub failed: u64,
    pub pending: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_id_is_the_rule_and_transition_and_nothing_else() {
        let (a, b) = (RuleId::generate(), RuleId::generate());
        assert_eq!(NotificationId::derive(&a, "k"), NotificationId::derive(&a, "k"));
        assert_ne!(NotificationId::derive(&a, "k"), NotificationId::derive(&b, "k"));
        assert_ne!(NotificationId::derive(&a, "k"), NotificationId::derive(&a, "k2"));
        let id = NotificationId::derive(&a, "k");
        assert_eq!(NotificationId::parse(id.as_str()).unwrap(), id);
        assert_eq!(RuleId::parse(a.as_str()).unwrap(), a);
        assert!(RuleId::parse("rul_../../etc").is_err());
    }

    #[test]
    fn events_round_trip_and_secrets_never_print() {
        for e in RuleEvent::RULES {
            assert_eq!(RuleEvent::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        let s = TargetSecrets::generate();
        assert!(s.current().unwrap().starts_with("whsec_"));
        assert!(!format!("{s:?}").contains("whsec_"));
        let r = s.rotated();
        assert_eq!(r.0.len(), 2);
        assert_eq!(r.0[1], s.0[0]);
    }
}

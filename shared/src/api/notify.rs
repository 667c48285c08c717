//! Notification rules and their log (shared/docs/notifications.md):
//! `/api/rules` (create, list, read, replace, delete, send a test, rotate the
//! signing secret) and `/api/notifications` (the log, and one notification
//! with its attempts).
//!
//! A rule's body is read strictly: an unknown field, an event no rule may
//! name, a filter its event does not take, a repository, login, team or
//! glob that does not parse, or a target URL the sender would refuse is a
//! 400 saying which. The OpenAPI document states the same constraints
//! (`RuleInput`, written in [`rule_input_schema`]).
//!
//! A webhook target's signing secret (`whsec_…`) is in two answers only:
//! the rule's creation and a rotation (and a replacement that turned a
//! target into a webhook). No other answer and no log line carries it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::query::{self, PageParams, Query, of};
use super::{ApiError, ApiState, ErrorBody};
use crate::domain::*;
use crate::ports::{Clock, NotificationLog, NotificationSink, Page, RuleStore, StoreError};

/// What the notification routes need. Absent from [`ApiState`]: they answer 501.
#[derive(Clone)]
pub struct NotifyApi {
    pub rules: Arc<dyn RuleStore>,
    pub log: Arc<dyn NotificationLog>,
    pub sink: Arc<dyn NotificationSink>,
    /// `OCTOSCOPE_NOTIFY_ALLOW_PRIVATE`: admit `http://`, loopback and private targets.
    pub allow_private: bool,
    pub clock: Arc<dyn Clock>,
}

/// How far back a rule's `stats` count.
pub const STATS_DAYS: i64 = 7;

// The grammar of each field, shared by the validation below and the document.

/// A GitHub login (a bot's `name[bot]` included).
const LOGIN: &str = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$";
/// `ORG/TEAM-SLUG`.
const TEAM: &str = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_.-]{1,100}$";
/// A branch glob, an environment, a runner label, a dispatch event type:
/// 1-255 characters, none a control character.
const TEXT: &str = r"^[^\u0000-\u001f\u007f-\u009f]{1,255}$";
/// A target URL's length.
const URL_MAX: usize = 2048;
/// `review.pickup_breached`: hours, 1 to a year.
const HOURS_MAX: u32 = 8760;
/// `ci.queue_time_regressed`: seconds, 1 to a day.
const THRESHOLD_MAX: u64 = 86_400;

fn text_ok(s: &str) -> bool {
    let n = s.chars().count();
    (1..=255).contains(&n) && !s.chars().any(char::is_control)
}

fn login_ok(s: &str) -> bool {
    let base = s.strip_suffix("[bot]").unwrap_or(s);
    (1..=39).contains(&base.len())
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !base.starts_with('-')
}

fn team_ok(s: &str) -> bool {
    let Some((org, slug)) = s.split_once('/') else { return false };
    (1..=39).contains(&org.len())
        && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !org.starts_with('-')
        && (1..=100).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A rule as the API reads it (the document's `RuleInput` is [`rule_input_schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleInput {
    on: String,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    skip_late: bool,
    #[serde(default, deserialize_with = "whole")]
    hours: Option<u32>,
    #[serde(default, deserialize_with = "whole")]
    threshold_seconds: Option<u64>,
    #[serde(default)]
    label: Option<String>,
    target: TargetInput,
}

/// A whole number, written `4` or `4.0` (JSON Schema's integer is either).
fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let v = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => Some(v),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Some(f as u64),
        _ => None,
    };
    v.and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum TargetInput {
    Webhook {
        url: String,
    },
    Slack {
        url: String,
    },
    RepositoryDispatch {
        repo: String,
        #[serde(default)]
        event_type: Option<String>,
    },
}

/// A rule's event, filters and target, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub event: RuleEvent,
    pub filters: RuleFilters,
    pub target: TargetSpec,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// Read and check a rule's body: the API's and the CLI's one set of rules.
/// `allow_private` is `OCTOSCOPE_NOTIFY_ALLOW_PRIVATE`.
pub async fn parse_rule(body: &[u8], allow_private: bool) -> Result<RuleSpec, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    // A filter of another event is refused even when null.
    let given: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let input: RuleInput = serde_json::from_value(value).map_err(|e| format!("the rule does not read: {e}"))?;
    check_rule(input, &given, allow_private).await
}

/// A rule given field by field (the CLI's flags).
#[derive(Debug, Default, Clone)]
pub struct RuleFields {
    pub on: String,
    pub filters: RuleFilterFields,
    /// `webhook`, `slack` or `repository_dispatch`.
    pub target_type: String,
    /// The webhook or Slack URL, or the dispatch's `OWNER/NAME`.
    pub target: String,
    pub event_type: Option<String>,
}

/// The filters as text, before they are checked.
#[derive(Debug, Default, Clone)]
pub struct RuleFilterFields {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub author: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub skip_late: bool,
    pub hours: Option<u32>,
    pub threshold_seconds: Option<u64>,
    pub label: Option<String>,
}

/// Check a rule given field by field, by the same rules as the API's body.
pub async fn check_rule_fields(f: RuleFields, allow_private: bool) -> Result<RuleSpec, String> {
    let target = match f.target_type.as_str() {
        "webhook" => TargetInput::Webhook { url: f.target },
        "slack" => TargetInput::Slack { url: f.target },
        "repository_dispatch" => TargetInput::RepositoryDispatch { repo: f.target, event_type: f.event_type },
        other => return Err(format!("unknown target type {other:?}: webhook, slack or repository_dispatch")),
    };
    let RuleFilterFields { repo, branch, author, team, environment, skip_late, hours, threshold_seconds, label } =
        f.filters;
    let given: Vec<String> =
        [("hours", hours.is_some()), ("threshold_seconds", threshold_seconds.is_some()), ("label", label.is_some())]
            .into_iter()
            .filter(|(_, g)| *g)
            .map(|(k, _)| k.to_owned())
            .collect();
    check_rule(
        RuleInput {
            on: f.on,
            repo,
            branch,
            author,
            team,
            environment,
            skip_late,
            hours,
            threshold_seconds,
            label,
            target,
        },
        &given,
        allow_private,
    )
    .await
}

async fn check_rule(input: RuleInput, given: &[String], allow_private: bool) -> Result<RuleSpec, String> {
    let event = RuleEvent::parse(&input.on).filter(|e| RuleEvent::RULES.contains(e)).ok_or_else(|| {
        format!(
            "unknown event {:?}; a rule listens for one of: {}",
            input.on.chars().take(60).collect::<String>(),
            RuleEvent::RULES.map(RuleEvent::as_str).join(", ")
        )
    })?;
    let repo = input
        .repo
        .map(|r| RepoName::parse(&r).map_err(|_| "repo must be OWNER/NAME (a GitHub repository)".to_owned()))
        .transpose()?;
    if let Some(b) = &input.branch
        && !text_ok(b)
    {
        return Err("branch must be a glob of 1-255 characters without control characters (main, release/*, **)".into());
    }
    if let Some(a) = &input.author
        && !login_ok(a)
    {
        return Err("author must be a GitHub login (letters, digits and -, at most 39)".into());
    }
    if let Some(t) = &input.team
        && !team_ok(t)
    {
        return Err("team must be ORG/TEAM-SLUG".into());
    }
    if let Some(e) = &input.environment
        && !text_ok(e)
    {
        return Err("environment must be 1-255 characters without control characters".into());
    }
    for (name, of) in [
        ("hours", RuleEvent::ReviewPickupBreached),
        ("threshold_seconds", RuleEvent::CiQueueTimeRegressed),
        ("label", RuleEvent::CiQueueTimeRegressed),
    ] {
        if event != of && given.iter().any(|g| g == name) {
            return Err(format!("{name} is a filter of {} only, not of {}", of.as_str(), event.as_str()));
        }
    }
    if let Some(h) = input.hours
        && !(1..=HOURS_MAX).contains(&h)
    {
        return Err(format!("hours must be from 1 to {HOURS_MAX}"));
    }
    if let Some(s) = input.threshold_seconds
        && !(1..=THRESHOLD_MAX).contains(&s)
    {
        return Err(format!("threshold_seconds must be from 1 to {THRESHOLD_MAX}"));
    }
    if let Some(l) = &input.label
        && !text_ok(l)
    {
        return Err("label must be 1-255 characters without control characters".into());
    }
    let target = match input.target {
        TargetInput::Webhook { url } => TargetSpec::Webhook { url: check_url(url, allow_private).await? },
        TargetInput::Slack { url } => TargetSpec::Slack { url: check_url(url, allow_private).await? },
        TargetInput::RepositoryDispatch { repo, event_type } => {
            let repo = RepoName::parse(&repo)
                .map_err(|_| "target.repo must be OWNER/NAME (a GitHub repository)".to_owned())?;
            if let Some(t) = &event_type
                && (!text_ok(t) || t.chars().count() > 100)
            {
                return Err("target.event_type must be 1-100 characters without control characters".into());
            }
            TargetSpec::RepositoryDispatch { repo, event_type }
        }
    };
    let filters = RuleFilters {
        repo,
        branch: input.branch,
        author: input.author,
        team: input.team,
        environment: input.environment,
        skip_late: input.skip_late,
        hours: input.hours,
        threshold_seconds: input.threshold_seconds,
        label: input.label,
    };
    Ok(RuleSpec { event, filters, target })
}

/// A target URL the sender will send to. The sender's own check first (its
/// reasons are the clearest: not https, a loopback or private address), then
/// the host's addresses as DNS has them now (a name that resolves to a
/// refused address is refused; one that does not resolve now is checked
/// again at every send), then, unless private targets are allowed, the
/// grammar the document states ([`URL`]).
async fn check_url(url: String, allow_private: bool) -> Result<String, String> {
    if url.len() > URL_MAX {
        return Err(format!("target.url must be at most {URL_MAX} characters"));
    }
    sender_check(&url, allow_private).await?;
    if !allow_private && !url_grammar_ok(&url) {
        return Err("target.url must be https://, a host name (not an address) with a domain, an optional port \
                    and path: https://hooks.example.com/octoscope"
            .into());
    }
    Ok(url)
}

#[cfg(feature = "notify")]
async fn sender_check(url: &str, allow_private: bool) -> Result<(), String> {
    use crate::adapters::notify_http::{check_target, check_target_url};
    use crate::ports::SendError;
    check_target_url(url, allow_private).map_err(|e| format!("target.url is refused: {}", refusal(e)))?;
    match tokio::time::timeout(std::time::Duration::from_secs(2), check_target(url, allow_private)).await {
        Ok(Err(e @ SendError::Refused(_))) => Err(format!("target.url is refused: {}", refusal(e))),
        // Not resolvable now (or slow): the send-time check decides.
        _ => Ok(()),
    }
}

#[cfg(feature = "notify")]
fn refusal(e: crate::ports::SendError) -> String {
    match e {
        crate::ports::SendError::Refused(why) => why,
        other => other.to_string(),
    }
}

/// A build without the sender (the AWS functions, for now) has no notifications.
#[cfg(not(feature = "notify"))]
async fn sender_check(_url: &str, _allow_private: bool) -> Result<(), String> {
    Err("this build sends no notifications".into())
}

/// A target URL where private targets are not allowed, as the document states it.
pub(super) const URL: &str = concat!(
    r"^https://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
);

/// [`URL`], by hand (no regex engine in the functions).
fn url_grammar_ok(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let labels: Vec<&str> = host.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else { return false };
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let port_ok = |p: &str| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && !p.starts_with('0')
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    };
    !rest.is_empty()
        && rest.iter().all(label_ok)
        && (2..=63).contains(&tld.len())
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && port.is_none_or(port_ok)
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=:@%/?-".contains(&b))
}

/// A rule as the API shows it: its filters beside its event and target
/// (every one present, null when absent), never its secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    /// `rul_` and 20 hex digits.
    id: String,
    /// The event the rule listens for.
    on: RuleEvent,
    /// Only this repository: OWNER/NAME.
    repo: Option<String>,
    /// Only branches matching this glob (`*` within a segment, `**` across, `?` one character).
    branch: Option<String>,
    /// Only changes by this login.
    author: Option<String>,
    /// Only changes by members of this team: ORG/TEAM-SLUG.
    team: Option<String>,
    /// Only deployments to this environment.
    environment: Option<String>,
    /// Not for transitions found late by the integrity check's resync.
    skip_late: bool,
    /// `review.pickup_breached`: hours without a review (default 24).
    hours: Option<u32>,
    /// `ci.queue_time_regressed`: the p90 queue time in seconds above which it fires (default 300).
    threshold_seconds: Option<u64>,
    /// `ci.queue_time_regressed`: only this runner label.
    label: Option<String>,
    /// The target. A Slack webhook URL's path is its credential: shown as
    /// its scheme and host only (`https://hooks.slack.com/…`).
    target: TargetView,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// Why the target is disabled (it answered 410 Gone), or null. Replacing the rule enables it again.
    disabled: Option<String>,
    /// The rule's notifications decided in the last 7 days, by status.
    stats: RuleStats,
}

impl RuleView {
    pub fn of(rule: &Rule, stats: RuleStats) -> Self {
        let f = rule.filters.clone();
        Self {
            id: rule.id.to_string(),
            on: rule.event,
            repo: f.repo.map(|r| r.as_str().to_owned()),
            branch: f.branch,
            author: f.author,
            team: f.team,
            environment: f.environment,
            skip_late: f.skip_late,
            hours: f.hours,
            threshold_seconds: f.threshold_seconds,
            label: f.label,
            target: shown_target(&rule.target),
            created_at: rule.created_at,
            updated_at: rule.updated_at,
            disabled: rule.disabled.clone(),
            stats,
        }
    }
}

/// Where a rule's notifications go, as answers show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetView {
    /// An HTTPS endpoint, signed by the Standard Webhooks specification.
    Webhook { url: String },
    /// A Slack incoming webhook, its URL without the path (the credential Slack issued).
    Slack { url: String },
    /// GitHub's repository_dispatch on a repository.
    RepositoryDispatch {
        /// OWNER/NAME.
        repo: String,
        /// The dispatch's event_type; null: octoscope.
        event_type: Option<String>,
    },
}

/// A target as answers show it: a Slack URL without its path (the path is
/// the credential Slack issued).
fn shown_target(target: &TargetSpec) -> TargetView {
    match target {
        TargetSpec::Webhook { url } => TargetView::Webhook { url: url.clone() },
        TargetSpec::Slack { url } => {
            let host_end = url.find("://").map(|i| i + 3).map(|s| s + url[s..].find('/').unwrap_or(url.len() - s));
            let shown = match host_end {
                Some(end) if end < url.len() => format!("{}/…", &url[..end]),
                _ => url.clone(),
            };
            TargetView::Slack { url: shown }
        }
        TargetSpec::RepositoryDispatch { repo, event_type } => {
            TargetView::RepositoryDispatch { repo: repo.as_str().to_owned(), event_type: event_type.clone() }
        }
    }
}

/// A rule with its signing secret: the one answer that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleWithSecret {
    #[serde(flatten)]
    pub rule: RuleView,
    /// The webhook target's signing secret (`whsec_` and base64), shown in this
    /// answer only: keep it now. Null for Slack and repository_dispatch targets,
    /// and when a replacement kept the secret it had.
    pub secret: Option<String>,
}

/// A notification with every attempt to send it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NotificationDetail {
    #[serde(flatten)]
    notification: Notification,
    /// Every attempt to send it, in order (`attempts` counts them).
    attempt_log: Vec<Attempt>,
}

/// Read as the document's `RuleInput` (replaced by [`rule_input_schema`]).
#[derive(ToSchema)]
#[schema(as = RuleInput)]
#[allow(dead_code)]
pub(super) struct RuleInputDoc {
    on: String,
}

/// A rule id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct RulePath {
    /// The rule's id: `rul_` and 20 hex digits.
    #[param(pattern = r"^rul_[0-9a-f]{20}$")]
    id: String,
}

/// A notification id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct NotificationPath {
    /// The notification's id: `ntf_` and 26 hex digits.
    #[param(pattern = r"^ntf_[0-9a-f]{26}$")]
    id: String,
}

/// `rule` and `status` of `/api/notifications`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct NotificationParams {
    /// Only this rule's notifications.
    #[param(pattern = r"^(?:rul_[0-9a-f]{20})?$")]
    rule: Option<String>,
    /// Only notifications in this state.
    #[param(inline)]
    status: Option<NotificationStatus>,
}

fn notify(state: &ApiState) -> Result<&NotifyApi, ApiError> {
    state.notify.as_ref().ok_or(ApiError::NotImplemented("this deployment has no notifications"))
}

fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BadRequest("the body is larger than the limit".into())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })
}

fn rule_id(path: Result<Path<String>, PathRejection>) -> Result<RuleId, ApiError> {
    let Path(id) = path.map_err(|r| bad(r.body_text()))?;
    RuleId::parse(&id).map_err(|_| bad("a rule id is rul_ and 20 hex digits"))
}

fn or_end<T>(page: Result<Page<T>, StoreError>) -> Result<Page<T>, ApiError> {
    match page {
        Err(StoreError::BadCursor) => Ok(Page { items: Vec::new(), next_cursor: None }),
        page => Ok(page?),
    }
}

async fn stats(n: &NotifyApi, rule: &RuleId) -> Result<RuleStats, ApiError> {
    Ok(n.log.rule_stats(rule, stats_since(n.clock.now())).await?)
}

async fn existing(n: &NotifyApi, id: &RuleId) -> Result<Rule, ApiError> {
    n.rules.get_rule(id).await?.ok_or(ApiError::NotFound)
}

/// When a rule's `stats` start, at `now`.
pub fn stats_since(now: Timestamp) -> Timestamp {
    now - chrono::TimeDelta::days(STATS_DAYS)
}

/// JSON as the API answers it, indented (the CLI's `--json`).
pub fn pretty_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("the API's views serialise")
}

/// A new rule from a checked spec: a signing secret for a webhook target.
pub fn new_rule(spec: RuleSpec, now: Timestamp) -> Rule {
    let secrets = match spec.target {
        TargetSpec::Webhook { .. } => TargetSecrets::generate(),
        _ => TargetSecrets::default(),
    };
    Rule {
        id: RuleId::generate(),
        event: spec.event,
        filters: spec.filters,
        target: spec.target,
        secrets,
        created_at: now,
        updated_at: now,
        disabled: None,
    }
}

/// A test notification of a rule: its own transition key, so every test is a new notification.
pub fn test_notification(rule: &Rule, now: Timestamp) -> Notification {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).expect("the system's random source");
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let transition = Transition {
        event: RuleEvent::Test,
        key: format!("test:{}:{nonce}", now.timestamp_millis()),
        repo: rule.filters.repo.clone(),
        branch: None,
        author: None,
        environment: None,
        occurred_at: now,
        late: false,
        data: json!({
            "message": "A test notification from Octoscope",
            "rule": { "id": rule.id.as_str(), "on": rule.event.as_str() },
        }),
    };
    Notification::decide(&rule.id, &transition, now)
}

/// Create a rule
///
/// The rule's event, its filters (each optional, beside `on` and `target`), and its target. A webhook target gets a signing secret (Standard Webhooks, `whsec_…`), shown in this answer only.
#[utoipa::path(post, path = "/api/rules",
    request_body(content = RuleInputDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = RuleWithSecret),
        (status = 400, description = "the rule is not one this server takes; the message says which field and why", body = ErrorBody),
        (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn create_rule(
    State(state): State<ApiState>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Query::parse(q, [])?;
    let body = body_of(body)?;
    let n = notify(&state)?;
    let spec = parse_rule(&body, n.allow_private).await.map_err(bad)?;
    let rule = new_rule(spec, n.clock.now());
    n.rules.put_rule(&rule).await?;
    let secret = rule.secrets.current().map(str::to_owned);
    let view = RuleWithSecret { rule: RuleView::of(&rule, RuleStats::default()), secret };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Rules, oldest first, each with its last 7 days' notifications by status
#[utoipa::path(get, path = "/api/rules", params(PageParams), responses(
    (status = 200, description = "OK", body = Page<RuleView>),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn list_rules(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<PageParams>()])?;
    let page = q.page()?;
    let n = notify(&state)?;
    let rules = or_end(n.rules.list_rules(&page).await)?;
    let mut items = Vec::with_capacity(rules.items.len());
    for rule in &rules.items {
        items.push(RuleView::of(rule, stats(n, &rule.id).await?));
    }
    Ok(Json(Page { items, next_cursor: rules.next_cursor }).into_response())
}

/// One rule
#[utoipa::path(get, path = "/api/rules/{id}", params(RulePath), responses(
    (status = 200, description = "OK", body = RuleView),
    (status = 404, description = "no such rule", body = ErrorBody),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn get_rule(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = rule_id(path)?;
    Query::parse(q, [])?;
    let n = notify(&state)?;
    let rule = existing(n, &id).await?;
    Ok(Json(RuleView::of(&rule, stats(n, &id).await?)).into_response())
}

/// Replace a rule's event, filters and target
///
/// Keeps its id, its creation time and its signing secrets, and enables a disabled target again. A target that becomes a webhook without a secret gets one, shown in this answer only.
#[utoipa::path(put, path = "/api/rules/{id}", params(RulePath),
    request_body(content = RuleInputDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced; `secret` is null unless one was made", body = RuleWithSecret),
        (status = 400, description = "the rule is not one this server takes; the message says which field and why", body = ErrorBody),
        (status = 404, description = "no such rule", body = ErrorBody),
        (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn put_rule(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = rule_id(path)?;
    Query::parse(q, [])?;
    let body = body_of(body)?;
    let n = notify(&state)?;
    let spec = parse_rule(&body, n.allow_private).await.map_err(bad)?;
    let old = existing(n, &id).await?;
    let (rule, secret) = replaced(old, spec, n.clock.now());
    n.rules.put_rule(&rule).await?;
    let view = RuleWithSecret { rule: RuleView::of(&rule, stats(n, &id).await?), secret };
    Ok(Json(view).into_response())
}

/// A rule replaced by a new spec: the same id, creation time and secrets,
/// enabled; a secret made (and returned) when a webhook target has none.
pub fn replaced(old: Rule, spec: RuleSpec, now: Timestamp) -> (Rule, Option<String>) {
    let mut secrets = old.secrets;
    let mut made = None;
    if matches!(spec.target, TargetSpec::Webhook { .. }) && secrets.current().is_none() {
        secrets = TargetSecrets::generate();
        made = secrets.current().map(str::to_owned);
    }
    let rule = Rule {
        id: old.id,
        event: spec.event,
        filters: spec.filters,
        target: spec.target,
        secrets,
        created_at: old.created_at,
        updated_at: now,
        disabled: None,
    };
    (rule, made)
}

/// Delete a rule
///
/// Its notifications stay in the log.
#[utoipa::path(delete, path = "/api/rules/{id}", params(RulePath), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "no such rule", body = ErrorBody),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn delete_rule(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = rule_id(path)?;
    Query::parse(q, [])?;
    let n = notify(&state)?;
    if n.rules.delete_rule(&id).await? { Ok(StatusCode::NO_CONTENT.into_response()) } else { Err(ApiError::NotFound) }
}

/// Send a rule's target a test notification
///
/// A new notification (event `test`) goes to the outbox and is sent like any other; its attempts show in the log.
#[utoipa::path(post, path = "/api/rules/{id}/test", params(RulePath), responses(
    (status = 202, description = "Enqueued", body = Notification),
    (status = 404, description = "no such rule", body = ErrorBody),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn test_rule(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = rule_id(path)?;
    Query::parse(q, [])?;
    let n = notify(&state)?;
    let rule = existing(n, &id).await?;
    let note = test_notification(&rule, n.clock.now());
    n.sink.enqueue(std::slice::from_ref(&note)).await?;
    Ok((StatusCode::ACCEPTED, Json(note)).into_response())
}

/// Rotate a webhook target's signing secret
///
/// A new secret signs from now on, beside the current one, which stays valid (messages carry both signatures) until the next rotation. The new secret is shown in this answer only.
#[utoipa::path(post, path = "/api/rules/{id}/rotate-secret", params(RulePath), responses(
    (status = 200, description = "Rotated; `secret` is the new one", body = RuleWithSecret),
    (status = 404, description = "no such rule", body = ErrorBody),
    (status = 409, description = "the rule's target is not a webhook: it has no signing secret", body = ErrorBody),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn rotate_secret(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = rule_id(path)?;
    Query::parse(q, [])?;
    let n = notify(&state)?;
    let mut rule = existing(n, &id).await?;
    if !matches!(rule.target, TargetSpec::Webhook { .. }) {
        return Err(ApiError::Conflict("the rule's target is not a webhook: it has no signing secret".into()));
    }
    rule.secrets = rule.secrets.rotated();
    rule.updated_at = n.clock.now();
    n.rules.put_rule(&rule).await?;
    let secret = rule.secrets.current().map(str::to_owned);
    Ok(Json(RuleWithSecret { rule: RuleView::of(&rule, stats(n, &id).await?), secret }).into_response())
}

/// The notification log, newest first
#[utoipa::path(get, path = "/api/notifications", params(NotificationParams, PageParams), responses(
    (status = 200, description = "OK", body = Page<Notification>),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn notifications(State(state): State<ApiState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q, [of::<NotificationParams>(), of::<PageParams>()])?;
    let rule = q
        .get("rule")
        .map(|r| RuleId::parse(r).map_err(|_| bad("rule must be a rule id: rul_ and 20 hex digits")))
        .transpose()?;
    let status = q
        .get("status")
        .map(|s| NotificationStatus::parse(s).ok_or_else(|| bad("status must be pending, delivered or failed")))
        .transpose()?;
    let page = q.page()?;
    let n = notify(&state)?;
    let filter = NotificationFilter { rule, status };
    Ok(Json(or_end(n.log.list_notifications(&filter, &page).await)?).into_response())
}

/// One notification with its attempts
#[utoipa::path(get, path = "/api/notifications/{id}", params(NotificationPath), responses(
    (status = 200, description = "OK", body = NotificationDetail),
    (status = 404, description = "no such notification", body = ErrorBody),
    (status = 501, description = "this deployment has no notifications", body = ErrorBody),
))]
pub(super) async fn notification(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|r| bad(r.body_text()))?;
    let id = NotificationId::parse(&id).map_err(|_| bad("a notification id is ntf_ and 26 hex digits"))?;
    Query::parse(q, [])?;
    let n = notify(&state)?;
    let notification = n.log.get_notification(&id).await?.ok_or(ApiError::NotFound)?;
    let attempts = n.log.attempts(&id).await?;
    Ok(Json(NotificationDetail { notification, attempt_log: attempts }).into_response())
}

/// The document's `RuleInput`: one shape per kind of event (the scheduled
/// ones take their own filters), no other field, each field's grammar.
pub(super) fn rule_input_schema() -> Value {
    let text = |description: &str| json!({ "type": ["string", "null"], "pattern": TEXT, "description": description });
    let common = json!({
        "repo": { "type": ["string", "null"], "pattern": query::REPO, "description": "only this repository: OWNER/NAME" },
        "branch": text("only branches matching this glob: `*` within a path segment, `**` across, `?` one character"),
        "author": { "type": ["string", "null"], "pattern": LOGIN, "description": "only changes by this login" },
        "team": { "type": ["string", "null"], "pattern": TEAM, "description": "only changes by members of this team: ORG/TEAM-SLUG" },
        "environment": text("only deployments to this environment"),
        "skip_late": { "type": "boolean", "description": "not for transitions found late by the integrity check's resync (default false)" },
        "target": { "$ref": "#/components/schemas/TargetInput" },
    });
    let shape = |on: Value, extra: Value| {
        let mut props = common.clone();
        props["on"] = on;
        for (k, v) in extra.as_object().expect("an object") {
            props[k] = v.clone();
        }
        json!({ "type": "object", "additionalProperties": false, "required": ["on", "target"], "properties": props })
    };
    let plain: Vec<&str> = RuleEvent::RULES.iter().filter(|e| !e.is_scheduled()).map(|e| e.as_str()).collect();
    json!({
        "description": "A rule: the event it listens for (`on`), optional filters beside it (absent or null: any), and its target. `hours` only with review.pickup_breached; `threshold_seconds` and `label` only with ci.queue_time_regressed.",
        "oneOf": [
            shape(json!({ "type": "string", "enum": plain }), json!({})),
            shape(json!({ "type": "string", "enum": ["review.pickup_breached"] }), json!({
                "hours": { "type": ["integer", "null"], "minimum": 1, "maximum": HOURS_MAX, "description": "hours without a review (default 24)" },
            })),
            shape(json!({ "type": "string", "enum": ["ci.queue_time_regressed"] }), json!({
                "threshold_seconds": { "type": ["integer", "null"], "minimum": 1, "maximum": THRESHOLD_MAX, "description": "the p90 queue time in seconds above which it fires (default 300)" },
                "label": text("only this runner label"),
            })),
        ],
    })
}

/// The document's `TargetInput`.
pub(super) fn target_input_schema(url_pattern: &str) -> Value {
    let url = json!({ "type": "string", "maxLength": URL_MAX, "pattern": url_pattern });
    let kind = |k: &str| json!({ "type": "string", "enum": [k] });
    json!({
        "description": "Where the rule's notifications go: an HTTPS endpoint signed by the Standard Webhooks specification, a Slack incoming webhook, or GitHub's repository_dispatch on a repository (with the server's GitHub credentials). A URL must resolve to public addresses unless the server allows private targets (OCTOSCOPE_NOTIFY_ALLOW_PRIVATE).",
        "oneOf": [
            { "type": "object", "additionalProperties": false, "required": ["type", "url"],
              "properties": { "type": kind("webhook"), "url": url } },
            { "type": "object", "additionalProperties": false, "required": ["type", "url"],
              "properties": { "type": kind("slack"), "url": url } },
            { "type": "object", "additionalProperties": false, "required": ["type", "repo"],
              "properties": {
                  "type": kind("repository_dispatch"),
                  "repo": { "type": "string", "pattern": query::REPO },
                  "event_type": { "type": ["string", "null"], "pattern": r"^[^\u0000-\u001f\u007f-\u009f]{1,100}$", "description": "the dispatch's event_type (default octoscope)" },
              } },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(v: Value) -> Result<RuleSpec, String> {
        parse_rule(v.to_string().as_bytes(), true).await
    }

    #[tokio::test]
    async fn a_rule_reads_strictly() {
        let ok = parse(json!({"on": "pull_request.merged", "repo": "acme/api", "branch": "main",
            "target": {"type": "webhook", "url": "https://example.com/hook"}}))
        .await
        .unwrap();
        assert_eq!(ok.event, RuleEvent::PullRequestMerged);
        assert_eq!(ok.filters.branch.as_deref(), Some("main"));
        for (body, says) in [
            (json!({"on": "nope", "target": {"type": "slack", "url": "https://example.com"}}), "unknown event"),
            (json!({"on": "test", "target": {"type": "slack", "url": "https://example.com"}}), "unknown event"),
            (
                json!({"on": "branch.moved", "x": 1, "target": {"type": "slack", "url": "https://example.com"}}),
                "unknown field",
            ),
            (
                json!({"on": "branch.moved", "target": {"type": "slack", "url": "https://example.com", "y": 2}}),
                "unknown field",
            ),
            (
                json!({"on": "branch.moved", "repo": "nope", "target": {"type": "slack", "url": "https://example.com"}}),
                "repo",
            ),
            (
                json!({"on": "branch.moved", "branch": "a\u{1}", "target": {"type": "slack", "url": "https://example.com"}}),
                "branch",
            ),
            (
                json!({"on": "branch.moved", "hours": 3, "target": {"type": "slack", "url": "https://example.com"}}),
                "hours",
            ),
            (
                json!({"on": "review.pickup_breached", "threshold_seconds": 3, "target": {"type": "slack", "url": "https://example.com"}}),
                "threshold_seconds",
            ),
            (
                json!({"on": "branch.moved", "target": {"type": "email", "url": "https://example.com"}}),
                "unknown variant",
            ),
        ] {
            let e = parse(body.clone()).await.unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        let ok = parse(json!({"on": "review.pickup_breached", "hours": 4,
            "target": {"type": "repository_dispatch", "repo": "acme/ops"}}))
        .await
        .unwrap();
        assert_eq!(ok.filters.hours, Some(4));
    }

    #[test]
    fn the_grammars_agree_with_the_checks() {
        for s in ["octocat", "dependabot[bot]", "a-b"] {
            assert!(login_ok(s), "{s}");
        }
        for s in ["-a", "", "a b", "a/b"] {
            assert!(!login_ok(s), "{s}");
        }
        assert!(team_ok("acme/platform-team"));
        assert!(!team_ok("acme"));
        assert!(!team_ok("acme/a/b"));
        assert!(text_ok("release/**"));
        assert!(!text_ok(""));
        assert!(!text_ok(&"a".repeat(256)));
        for u in ["https://hooks.example.com", "https://a.bc:443/x?y=1&z=%20", "https://x-1.example.org/"] {
            assert!(url_grammar_ok(u), "{u}");
        }
        for u in [
            "http://a.bc",
            "https://127.0.0.1/",
            "https://localhost/",
            "https://a.bc:0",
            "https://a.bc:65536",
            "https://a.b1",
            "https://-a.bc",
            "https://a.bc/ x",
            "https://a.bc#f",
            "https://u@a.bc",
        ] {
            assert!(!url_grammar_ok(u), "{u}");
        }
    }
}

//! Sending decided notifications: each due one is sent once per turn, and
//! what follows is recorded with the attempt — delivered on 2xx, retried
//! with jittered exponential backoff on 408, 429, 5xx, a timeout or an
//! unreachable target, failed for good on any other answer or a refused
//! address, and the rule's target disabled on `410 Gone`.
//!
//! On one machine [`Sender::send_due`] works through the durable outbox
//! (`NotificationLog::take_due`); on AWS the notifier calls
//! [`Sender::send_one`] for each queued notification and leaves retrying to
//! the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::message;
use crate::domain::{AfterAttempt, Attempt, Notification, NotificationStatus, RepoName, Rule, TargetSpec, Timestamp};
use crate::error::StoreError;
use crate::ports::{Clock, NotificationLog, NotifyTransport, Outbound, RuleStore, SendError};

/// One attempt's default total time (the transport's timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// An attempt's log excerpt, in characters.
pub const EXCERPT_CHARS: usize = 200;
/// Where `repository_dispatch` goes unless configured otherwise.
pub const GITHUB_API: &str = "https://api.github.com";

/// How often and over how long a notification is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// About how long from the first attempt to the last: the delays
    /// between attempts add up to this, give or take the jitter.
    pub horizon: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 6, horizon: Duration::from_secs(2 * 3600) }
    }
}

impl RetryPolicy {
    pub fn new(attempts: u32, horizon: Duration) -> Self {
        Self { attempts: attempts.max(1), horizon }
    }

    /// `OCTOSCOPE_NOTIFY_ATTEMPTS` and `OCTOSCOPE_NOTIFY_HORIZON_SECONDS`, as loaded.
    pub fn from_config(config: &crate::config::NotifyConfig) -> Self {
        Self::new(config.attempts, config.horizon)
    }

    /// The first delay: the horizon over 2^(attempts-1) - 1, so that the
    /// doubling delays between the attempts add up to the horizon.
    fn base(&self) -> Duration {
        let gaps = self.attempts.saturating_sub(1).min(31);
        let parts = (1u64 << gaps).saturating_sub(1).max(1);
        self.horizon.div_f64(parts as f64)
    }

    /// The delay after attempt `n` (1: the first) before the next, without jitter.
    pub fn nominal_delay(&self, n: u32) -> Duration {
        self.base().saturating_mul(1u32 << n.saturating_sub(1).min(31))
    }

    /// The delay after attempt `n`, ±20 % jitter (so that notifications that
    /// failed together are not retried together).
    pub fn delay(&self, n: u32) -> Duration {
        self.nominal_delay(n).mul_f64(0.8 + 0.4 * fastrand::f64())
    }

    /// Whether attempt `n` may be followed by another.
    pub fn may_retry_after(&self, n: u32) -> bool {
        n < self.attempts
    }
}

/// GitHub credentials for `repository_dispatch` to a repository: a
/// `GITHUB_TOKEN`, or a token of the GitHub App installation on the
/// repository's owner, narrowed to that repository and the Contents write
/// permission a dispatch needs.
#[async_trait]
pub trait DispatchTokens: Send + Sync {
    async fn token(&self, repo: &RepoName) -> anyhow::Result<String>;
}

/// One token for every owner (`GITHUB_TOKEN`).
pub struct StaticToken(pub String);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(redacted)")
    }
}

#[async_trait]
impl DispatchTokens for StaticToken {
    async fn token(&self, _repo: &RepoName) -> anyhow::Result<String> {
        Ok(self.0.clone())
    }
}

/// What one turn of [`Sender::send_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Notifications taken (due and leased).
    pub taken: usize,
    pub delivered: usize,
    /// To be tried again later.
    pub retrying: usize,
    pub failed: usize,
    /// Failed, and their rule's target disabled (410 Gone).
    pub disabled: usize,
    /// Not recorded (the store failed, or the sending task did): tried again when their lease ends.
    pub errors: usize,
}

/// What [`Sender::send_one`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// The notification is no longer pending: nothing was sent.
    Skipped(NotificationStatus),
    /// One attempt, recorded, and what follows it.
    Attempted { attempt: Attempt, next: AfterAttempt },
}

/// Sends notifications to their rules' targets.
#[derive(Clone)]
pub struct Sender {
    log: Arc<dyn NotificationLog>,
    rules: Arc<dyn RuleStore>,
    transport: Arc<dyn NotifyTransport>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    timeout: Duration,
    dashboard: Option<String>,
    github_api: String,
    tokens: Option<Arc<dyn DispatchTokens>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("dashboard", &self.dashboard)
            .field("github_api", &self.github_api)
            .field("tokens", &self.tokens.is_some())
            .finish()
    }
}

impl Sender {
    /// With the default retry policy and a 10 s timeout, no dashboard link
    /// and no GitHub credentials (`repository_dispatch` targets fail).
    pub fn new(
        log: Arc<dyn NotificationLog>,
        rules: Arc<dyn RuleStore>,
        transport: Arc<dyn NotifyTransport>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            log,
            rules,
            transport,
            clock,
            policy: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            dashboard: None,
            github_api: GITHUB_API.to_owned(),
            tokens: None,
        }
    }

    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The transport's timeout: notifications are leased for twice as long.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The dashboard's base URL, linked from Slack messages.
    pub fn with_dashboard(mut self, base_url: Option<String>) -> Self {
        self.dashboard = base_url.filter(|u| !u.is_empty());
        self
    }

    /// The GitHub API base URL and the credentials for `repository_dispatch`.
    pub fn with_github(mut self, api_base: impl Into<String>, tokens: Arc<dyn DispatchTokens>) -> Self {
        self.github_api = api_base.into();
        self.tokens = Some(tokens);
        self
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// How long a taken notification is leased: twice the timeout, and the
    /// notifications of one turn are sent concurrently, so each is done well
    /// within its lease.
    pub fn lease(&self) -> Duration {
        self.timeout.saturating_mul(2).max(Duration::from_secs(1))
    }

    /// Take up to `limit` due notifications and send each once.
    pub async fn send_due(&self, limit: usize) -> Result<SendReport, StoreError> {
        let due = self.log.take_due(self.clock.now(), self.lease(), limit).await?;
        let mut report = SendReport { taken: due.len(), ..SendReport::default() };
        let mut tasks = tokio::task::JoinSet::new();
        for note in due {
            let me = self.clone();
            tasks.spawn(async move { me.attempt_and_record(&note).await });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok((_, next))) => match next {
                    AfterAttempt::Delivered => report.delivered += 1,
                    AfterAttempt::Retry(_) => report.retrying += 1,
                    AfterAttempt::Failed(_) => report.failed += 1,
                    AfterAttempt::DisableTarget(_) => report.disabled += 1,
                },
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a notification's attempt was not recorded");
                    report.errors += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a notification's sending task failed");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    /// Send one notification once, unless the log holds it as no longer
    /// pending (a queue's redelivery of one already delivered); the attempt
    /// is recorded. Its attempts so far are the log's when it is there.
    pub async fn send_one(&self, note: &Notification) -> Result<Sent, StoreError> {
        let stored = self.log.get_notification(&note.id).await?;
        if let Some(s) = &stored
            && s.status != NotificationStatus::Pending
        {
            return Ok(Sent::Skipped(s.status));
        }
        let note = stored.as_ref().unwrap_or(note);
        let (attempt, next) = self.attempt_and_record(note).await?;
        Ok(Sent::Attempted { attempt, next })
    }

    async fn attempt_and_record(&self, note: &Notification) -> Result<(Attempt, AfterAttempt), StoreError> {
        let (attempt, next) = self.attempt(note).await?;
        self.log.record_attempt(&attempt, &next).await?;
        if let AfterAttempt::DisableTarget(reason) = &next {
            self.rules.disable_rule(&note.rule_id, reason).await?;
        }
        match &next {
            AfterAttempt::Delivered => {
                tracing::info!(notification = %note.id, rule = %note.rule_id, attempt = attempt.number, "notification delivered")
            }
            AfterAttempt::Retry(at) => {
                tracing::info!(notification = %note.id, rule = %note.rule_id, attempt = attempt.number, %at, excerpt = %attempt.excerpt, "notification to be retried")
            }
            AfterAttempt::Failed(why) | AfterAttempt::DisableTarget(why) => {
                tracing::warn!(notification = %note.id, rule = %note.rule_id, attempt = attempt.number, reason = %why, "notification failed")
            }
        }
        Ok((attempt, next))
    }

    /// One attempt (not recorded) and what follows it.
    async fn attempt(&self, note: &Notification) -> Result<(Attempt, AfterAttempt), StoreError> {
        let number = note.attempts + 1;
        let at = self.clock.now();
        let attempt = |status_code, latency_ms, excerpt: &str| Attempt {
            notification_id: note.id.clone(),
            number,
            at,
            status_code,
            latency_ms,
            excerpt: excerpt_of(excerpt.as_bytes()),
        };
        let rule = match self.rules.get_rule(&note.rule_id).await? {
            None => {
                let why = "rule deleted";
                return Ok((attempt(None, 0, why), AfterAttempt::Failed(why.into())));
            }
            Some(r) => r,
        };
        if let Some(reason) = &rule.disabled {
            let why = format!("target disabled: {reason}");
            return Ok((attempt(None, 0, &why), AfterAttempt::Failed(why)));
        }
        let started = Instant::now();
        let request = match self.outbound(note, &rule, at).await {
            Ok(r) => r,
            Err(Unsendable::Permanent(why)) => return Ok((attempt(None, 0, &why), AfterAttempt::Failed(why))),
            Err(Unsendable::Transient(why)) => {
                let next = self.retry_or_fail(number, at, &why);
                return Ok((attempt(None, elapsed_ms(started), &why), next));
            }
        };
        let result = self.transport.post(&request).await;
        let latency = elapsed_ms(started);
        Ok(match result {
            Ok(answer) => {
                let a = attempt(Some(answer.status), latency, "");
                let a = Attempt { excerpt: excerpt_of(&answer.body), ..a };
                let next = match answer.status {
                    200..=299 => AfterAttempt::Delivered,
                    410 => AfterAttempt::DisableTarget(format!("{} answered 410 Gone", host_of(&request.url))),
                    408 | 429 | 500..=599 => self.retry_or_fail(number, at, &format!("HTTP {}", answer.status)),
                    300..=399 => AfterAttempt::Failed(format!("HTTP {} (redirects are not followed)", answer.status)),
                    s => AfterAttempt::Failed(format!("HTTP {s}")),
                };
                (a, next)
            }
            Err(SendError::Refused(why)) => (attempt(None, latency, &why), AfterAttempt::Failed(why)),
            Err(e) => {
                let text = match &e {
                    SendError::Unreachable(source) => format!("{e}: {source:#}"),
                    _ => e.to_string(),
                };
                let next = self.retry_or_fail(number, at, &text);
                (attempt(None, latency, &text), next)
            }
        })
    }

    fn retry_or_fail(&self, number: u32, now: Timestamp, why: &str) -> AfterAttempt {
        if self.policy.may_retry_after(number) {
            let delay = chrono::TimeDelta::from_std(self.policy.delay(number)).unwrap_or(chrono::TimeDelta::MAX);
            AfterAttempt::Retry(now.checked_add_signed(delay).unwrap_or(now))
        } else {
            let mut last: String = why.chars().take(EXCERPT_CHARS).collect();
            if last.len() < why.len() {
                last.push('…');
            }
            AfterAttempt::Failed(format!("gave up after {number} attempts: {last}"))
        }
    }

    /// The request for `note` to `rule`'s target.
    async fn outbound(&self, note: &Notification, rule: &Rule, now: Timestamp) -> Result<Outbound, Unsendable> {
        match &rule.target {
            TargetSpec::Webhook { url } => {
                message::webhook(note, url, &rule.secrets, now).map_err(|e| Unsendable::Permanent(e.to_string()))
            }
            TargetSpec::Slack { url } => Ok(message::slack(note, url, self.dashboard.as_deref())),
            TargetSpec::RepositoryDispatch { repo, event_type } => {
                let tokens = self.tokens.as_ref().ok_or_else(|| {
                    Unsendable::Permanent(
                        "repository_dispatch needs GitHub credentials (a token or a GitHub App)".into(),
                    )
                })?;
                // The provider's error, never the token.
                let token = match tokio::time::timeout(self.timeout, tokens.token(repo)).await {
                    Ok(Ok(token)) => token,
                    Ok(Err(e)) => return Err(Unsendable::Transient(format!("no GitHub token for {repo}: {e:#}"))),
                    Err(_) => {
                        return Err(Unsendable::Transient(format!(
                            "no GitHub token for {repo}: timed out after {:?}",
                            self.timeout
                        )));
                    }
                };
                Ok(message::repository_dispatch(note, repo, event_type.as_deref(), &self.github_api, &token))
            }
        }
    }
}

/// Why no request could be made.
enum Unsendable {
    /// The rule's fault: retrying cannot help.
    Permanent(String),
    /// Credentials could not be had just now.
    Transient(String),
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A URL's host, for reasons shown to people (never its path or query: a
/// Slack webhook's path is its secret).
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.to_owned()
}

/// At most [`EXCERPT_CHARS`] characters of `bytes`: lossy UTF-8, control
/// characters dropped (line breaks and tabs become spaces), trimmed.
pub fn excerpt_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect::<String>()
        .trim()
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_delays_double_and_add_up_to_the_horizon() {
        let p = RetryPolicy::default();
        let nominal: Vec<Duration> = (1..p.attempts).map(|n| p.nominal_delay(n)).collect();
        assert_eq!(nominal.len(), 5);
        let total: Duration = nominal.iter().sum();
        assert!((total.as_secs_f64() - 7200.0).abs() < 1.0, "{total:?}");
        assert!((nominal[0].as_secs_f64() - 7200.0 / 31.0).abs() < 0.01);
        for w in nominal.windows(2) {
            assert!((w[1].as_secs_f64() - 2.0 * w[0].as_secs_f64()).abs() < 0.01);
        }
        for n in 1..p.attempts {
            for _ in 0..50 {
                let d = p.delay(n).as_secs_f64();
                let m = p.nominal_delay(n).as_secs_f64();
                assert!(d >= 0.8 * m - 1e-6 && d <= 1.2 * m + 1e-6, "{n}: {d} vs {m}");
            }
        }
        assert!(p.may_retry_after(5) && !p.may_retry_after(6));
        let one = RetryPolicy::new(1, Duration::from_secs(60));
        assert!(!one.may_retry_after(1));
        let two = RetryPolicy::new(2, Duration::from_secs(60));
        assert_eq!(two.nominal_delay(1), Duration::from_secs(60));
    }

    #[test]
    fn the_policy_is_the_configured_one() {
        let c = crate::config::NotifyConfig::default();
        assert_eq!(RetryPolicy::from_config(&c), RetryPolicy::default());
    }

    #[test]
    fn excerpts_are_short_printable_text() {
        assert_eq!(excerpt_of(b"ok\n\x00\x1b[31mred\xff"), "ok [31mred\u{fffd}");
        assert_eq!(excerpt_of("é".repeat(300).as_bytes()).chars().count(), 200);
        assert_eq!(host_of("https://hooks.slack.com/services/T/B/secret?x=1"), "hooks.slack.com");
        assert_eq!(host_of("https://u:p@h.example:8443/x"), "h.example:8443");
    }
}

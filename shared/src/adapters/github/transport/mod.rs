//! Sending one request politely: concurrency cap, rate-limit headers, waits for
//! primary and secondary limits, jittered exponential backoff for 5xx and
//! timeouts, and a count of every attempt. REST GETs follow GitHub's redirects
//! (a renamed or transferred repository answers its former name with `301` to
//! `/repositories/{id}/...`), a few hops at most and only on the API's own
//! host: a redirect elsewhere is refused, so no answer can steer requests (and
//! their credentials) to another address.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::{TimeZone as _, Utc};
use http::{HeaderMap, Method, StatusCode, header};
use octocrab::Octocrab;
use octocrab::secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::jwt::AppKey;
use crate::domain::Timestamp;
use crate::ports::{GitHubError, RateBudget};

/// How long and how often to wait and retry. The defaults suit GitHub; tests
/// use short ones.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request for 5xx, timeouts and connection failures (and,
    /// separately, the number of rate-limit waits per request).
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with full jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A rate-limit wait longer than this is not waited: the call returns
    /// [`GitHubError::RateLimited`] so the caller can reschedule.
    pub max_rate_limit_wait: Duration,
    /// Wait after a secondary rate limit that came without `Retry-After`
    /// (GitHub asks for at least a minute).
    pub secondary_limit_wait: Duration,
    /// One attempt (sending and reading the body) taking longer is a timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            secondary_limit_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The longest `Retry-After` taken as given (a day): a longer one, however
/// long, is a wait past [`RetryPolicy::max_rate_limit_wait`] all the same.
const MAX_RETRY_AFTER_SECS: u64 = 24 * 60 * 60;

/// Where the bearer token comes from.
pub(crate) enum TokenSource {
    Static(SecretString),
    /// A GitHub App installation: the app's JWT mints an installation token,
    /// cached until five minutes before it expires.
    App(Box<AppTokens>),
}

impl TokenSource {
    async fn bearer(&self) -> Result<SecretString, GitHubError> {
        match self {
            Self::Static(t) => Ok(t.clone()),
            Self::App(app) => app.installation_token().await,
        }
    }
}

/// A GitHub App installation's tokens.
pub(crate) struct AppTokens {
    pub app_id: u64,
    pub key: std::sync::Arc<AppKey>,
    pub installation_id: u64,
    /// The REST base, without credentials: the app's requests carry its JWT.
    pub client: Octocrab,
    pub cached: tokio::sync::Mutex<Option<(SecretString, Timestamp)>>,
    /// The installation's permissions when its current token was minted.
    pub granted: std::sync::Mutex<Option<std::collections::BTreeMap<String, String>>>,
}

impl AppTokens {
    async fn installation_token(&self) -> Result<SecretString, GitHubError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires_at)) = cached.as_ref()
            && *expires_at - Utc::now() > chrono::TimeDelta::minutes(5)
        {
            return Ok(token.clone());
        }
        #[derive(serde::Deserialize)]
        struct Minted {
            token: String,
            expires_at: Timestamp,
        }
        // Narrowed to what the reads need, as the installation grants it now.
        let granted =
            super::installations::installation(&self.client, &self.key, self.app_id, self.installation_id).await?;
        let narrowed = read_permissions(&granted.permissions).map(|p| serde_json::json!({ "permissions": p }));
        let path = format!("/app/installations/{}/access_tokens", self.installation_id);
        let minted: Minted = app_request(
            &self.client,
            &self.key,
            self.app_id,
            Method::POST,
            &path,
            narrowed.as_ref(),
            "minting the app installation token",
        )
        .await?;
        let token = SecretString::from(minted.token);
        *cached = Some((token.clone(), minted.expires_at));
        if let Ok(mut g) = self.granted.lock() {
            *g = Some(granted.permissions);
        }
        Ok(token)
    }

    /// Whether the installation holds `permission` (read or above), as of its current token.
    fn holds(&self, permission: &str) -> bool {
        self.granted
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|p| p.get(permission).cloned()))
            .is_some_and(|l| level_rank(&l) > 0)
    }
}

/// GitHub's permission levels in order: `read` < `write` < `admin`; anything else 0.
fn level_rank(level: &str) -> u8 {
    match level {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// The permissions the reads (resync, integrity check, redelivery) need, by
/// GitHub's names, and the level each needs: redelivering a hook's failed
/// delivery is a write; everything else is read.
pub(crate) const READ_PERMISSIONS: [(&str, &str); 9] = [
    ("metadata", "read"),
    ("pull_requests", "read"),
    ("contents", "read"),
    ("actions", "read"),
    ("checks", "read"),
    ("deployments", "read"),
    ("members", "read"),
    ("repository_hooks", "write"),
    ("organization_hooks", "write"),
];

/// The permissions an installation token for reading asks for: each of
/// [`READ_PERMISSIONS`] the installation has, at the level needed or the
/// installation's own if that is lower, and nothing else (so a token that
/// escaped cannot write contents, though the app may for
/// `repository_dispatch`). None when the installation lists no permission
/// the reads use (the token then gets what the installation has).
pub(crate) fn read_permissions(
    granted: &std::collections::BTreeMap<String, String>,
) -> Option<std::collections::BTreeMap<&'static str, String>> {
    let asked: std::collections::BTreeMap<&'static str, String> = READ_PERMISSIONS
        .iter()
        .filter_map(|&(name, needed)| {
            let has = granted.get(name)?;
            (level_rank(has) > 0)
                .then(|| (name, if level_rank(has) < level_rank(needed) { has.clone() } else { needed.to_owned() }))
        })
        .collect();
    (!asked.is_empty()).then_some(asked)
}

/// One request as the app itself (its JWT as the bearer), with a JSON body or none.
pub(crate) async fn app_request<T: DeserializeOwned>(
    crab: &Octocrab,
    key: &AppKey,
    app_id: u64,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    what: &str,
) -> Result<T, GitHubError> {
    let jwt = key.jwt(app_id, Utc::now()).map_err(GitHubError::Protocol)?;
    let mut auth = http::HeaderValue::try_from(format!("Bearer {jwt}"))
        .map_err(|e| GitHubError::Protocol(anyhow::Error::new(e).context("the app JWT as a header")))?;
    auth.set_sensitive(true);
    let builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(header::ACCEPT, "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header(header::AUTHORIZATION, auth);
    let request = crab
        .build_request(builder, body)
        .map_err(|e| GitHubError::Protocol(anyhow::Error::new(e).context(format!("building {what}"))))?;
    let response = crab.execute(request).await.map_err(|e| classify_octocrab(e, what))?;
    let response = octocrab::map_github_error(response).await.map_err(|e| classify_octocrab(e, what))?;
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| classify_octocrab(e, what))?
        .to_bytes();
    serde_json::from_slice(&bytes).with_context(|| format!("decoding {what}")).map_err(GitHubError::Protocol)
}

/// Which API (and so which rate-limit bucket and base URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Rest,
    Graphql,
}

/// A response that passed the status checks.
pub(crate) struct Reply {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).with_context(|| format!("decoding {what}")).map_err(GitHubError::Protocol)
    }
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    remaining: Option<u64>,
    limit: Option<u64>,
    reset_at: Option<Timestamp>,
}

struct Budgets {
    rest: Bucket,
    graphql: Bucket,
    last: Bucket,
}

/// Redirects one REST read follows at most.
pub(crate) const MAX_REDIRECTS: u32 = 3;

pub(crate) struct Transport {
    /// Whose budget this is: an installation's account login, or `token`.
    name: String,
    rest: Octocrab,
    /// The REST base (scheme, host, port): redirects are followed only within it.
    rest_base: http::Uri,
    graphql: Octocrab,
    token: TokenSource,
    permits: Semaphore,
    policy: RetryPolicy,
    budgets: Mutex<Budgets>,
    requests: AtomicU64,
    etags: EtagCache,
}

/// What one attempt came to.
enum Outcome {
    Done(Reply),
    /// `304 Not Modified`: the cached answer stands.
    NotModified,
    /// Wait this long, then try again (rate limits: does not use up attempts).
    RateLimited {
        until: Timestamp,
    },
    /// A redirect (3xx) to this `Location`.
    Redirect(String),
    /// Back off and try again (5xx, timeout).
    Transient(anyhow::Error),
    Fatal(GitHubError),
}

impl Transport {
    pub fn new(
        name: String,
        rest: Octocrab,
        rest_base: http::Uri,
        graphql: Octocrab,
        token: TokenSource,
        max_concurrency: usize,
        policy: RetryPolicy,
    ) -> Self {
        let empty = Bucket::default();
        Self {
            name,
            rest,
            rest_base,
            graphql,
            token,
            permits: Semaphore::new(max_concurrency.max(1)),
            policy,
            budgets: Mutex::new(Budgets { rest: empty, graphql: empty, last: empty }),
            requests: AtomicU64::new(0),
            etags: EtagCache::new(EtagCache::DEFAULT_ENTRIES, EtagCache::DEFAULT_BYTES),
        }
    }

    /// Whether these credentials may read what GitHub's `permission` covers
    /// (`deployments`, `members`, …): an installation as of its current token
    /// (minted first when there is none); a personal token is taken to (its
    /// scopes are not listed; GitHub's refusal then says it).
    pub async fn may_read(&self, permission: &str) -> Result<bool, GitHubError> {
        match &self.token {
            TokenSource::Static(_) => Ok(true),
            TokenSource::App(app) => {
                app.installation_token().await?;
                Ok(app.holds(permission))
            }
        }
    }

    pub fn budget(&self) -> RateBudget {
        let b = self.budgets.lock().map(|b| b.last).unwrap_or_default();
        RateBudget {
            remaining: b.remaining,
            limit: b.limit,
            reset_at: b.reset_at,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// A GraphQL query; GraphQL errors in a 200 answer are mapped too.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T, GitHubError> {
        self.graphql_tolerating(query, variables, &[]).await
    }

    /// A GraphQL query whose answer may be partial: when GitHub sent data,
    /// its errors (a `null` node, an item these credentials cannot read) come
    /// back beside it for the caller to skip those items; only an answer
    /// without data fails (mapped as [`Transport::graphql`] does).
    pub async fn graphql_lenient<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<(T, Vec<GraphqlError>), GitHubError> {
        let (name, answer) = self.graphql_answer::<T>(query, variables).await?;
        let errors = answer.errors.unwrap_or_default();
        match answer.data {
            Some(data) => Ok((data, errors)),
            None if errors.is_empty() => Err(GitHubError::Protocol(anyhow!("{name}: answer without data"))),
            None => Err(self.graphql_error(&name, &errors)),
        }
    }

    /// A GraphQL query; errors of the `tolerated` types do not fail it.
    async fn graphql_tolerating<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
        tolerated: &[&str],
    ) -> Result<T, GitHubError> {
        let (name, answer) = self.graphql_answer::<T>(query, variables).await?;
        let fatal: Vec<_> = answer
            .errors
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.kind.as_deref().is_some_and(|k| tolerated.contains(&k)))
            .collect();
        if !fatal.is_empty() {
            return Err(self.graphql_error(&name, &fatal));
        }
        answer.data.ok_or_else(|| GitHubError::Protocol(anyhow!("{name}: answer without data")))
    }

    async fn graphql_answer<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<(String, GraphqlAnswer<T>), GitHubError> {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let name = operation_name(query);
        let reply = self.send(Api::Graphql, Method::POST, "/graphql", Some(&body), &name).await?;
        let answer = reply.json(&name)?;
        Ok((name, answer))
    }

    /// The error of a partial answer that lacks the object everything hangs
    /// on (`missing`): GitHub's error for it when it sent one, else NotFound.
    pub fn graphql_failure(&self, name: &str, errors: &[GraphqlError], missing: String) -> GitHubError {
        if errors.is_empty() { GitHubError::NotFound(missing) } else { self.graphql_error(name, errors) }
    }

    fn graphql_error(&self, name: &str, errors: &[GraphqlError]) -> GitHubError {
        let first = &errors[0];
        match first.kind.as_deref() {
            Some("NOT_FOUND") => GitHubError::NotFound(first.message.clone()),
            Some("FORBIDDEN") | Some("INSUFFICIENT_SCOPES") => GitHubError::Forbidden(first.message.clone()),
            Some("RATE_LIMITED") => {
                GitHubError::RateLimited { retry_at: self.bucket(Api::Graphql).reset_at.unwrap_or_else(Utc::now) }
            }
            _ => GitHubError::Protocol(anyhow!(
                "{name}: {}",
                errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
            )),
        }
    }

    /// A REST call; `path` is relative to the API base and may carry a query.
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, GitHubError> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        self.send(Api::Rest, method, path, body, &what).await
    }

    async fn send(
        &self,
        api: Api,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<Reply, GitHubError> {
        let mut failures = 0u32;
        let mut waits = 0u32;
        let mut hops = 0u32;
        let mut path = path.to_owned();
        // Only REST reads are conditional (a GraphQL POST has no ETag), and only they follow redirects.
        let conditional = api == Api::Rest && method == Method::GET;
        loop {
            self.wait_for_budget(api).await?;
            let cached = if conditional { self.etags.get(&path) } else { None };
            let etag = cached.as_ref().map(|c| c.etag.clone());
            let outcome = self.attempt(api, method.clone(), &path, body, etag, what).await;
            match outcome {
                Outcome::Redirect(location) => {
                    if !conditional {
                        return Err(GitHubError::Protocol(anyhow!("{what}: GitHub redirected to {location}")));
                    }
                    hops += 1;
                    if hops > MAX_REDIRECTS {
                        return Err(GitHubError::Protocol(anyhow!(
                            "{what}: more than {MAX_REDIRECTS} redirects (the last to {location})"
                        )));
                    }
                    let next = same_origin(&self.rest_base, &location).map_err(|why| {
                        GitHubError::Protocol(anyhow!("{what}: redirect to {location} refused: {why}"))
                    })?;
                    tracing::info!(what, to = %next, "GitHub redirected (a repository renamed or transferred?): following");
                    path = next;
                }
                Outcome::NotModified => match cached {
                    Some(c) => return Ok(Reply { headers: c.headers, body: c.body }),
                    None => {
                        return Err(GitHubError::Protocol(anyhow!(
                            "{what}: 304 Not Modified to an unconditional request"
                        )));
                    }
                },
                Outcome::Done(reply) => {
                    if conditional && let Some(etag) = reply.headers.get(header::ETAG) {
                        let entry =
                            Cached { etag: etag.clone(), headers: reply.headers.clone(), body: reply.body.clone() };
                        self.etags.put(&path, entry);
                    }
                    return Ok(reply);
                }
                Outcome::Fatal(e) => return Err(e),
                Outcome::RateLimited { until } => {
                    waits += 1;
                    let wait = (until - Utc::now()).to_std().unwrap_or_default();
                    if waits > self.policy.max_attempts || wait > self.policy.max_rate_limit_wait {
                        return Err(GitHubError::RateLimited { retry_at: until });
                    }
                    tracing::warn!(what, wait_ms = wait.as_millis() as u64, "GitHub rate limit: waiting");
                    tokio::time::sleep(wait).await;
                }
                Outcome::Transient(e) => {
                    failures += 1;
                    if failures >= self.policy.max_attempts {
                        return Err(GitHubError::Unavailable(
                            e.context(format!("{what}: gave up after {failures} attempts")),
                        ));
                    }
                    let delay = self.backoff(failures);
                    tracing::warn!(what, attempt = failures, delay_ms = delay.as_millis() as u64, error = %format!("{e:#}"), "GitHub request failed: retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Full jitter: uniformly in [0, min(max, base * 2^(n-1))].
    fn backoff(&self, failures: u32) -> Duration {
        let exp = self.policy.base_delay.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let cap = exp.min(self.policy.max_delay);
        cap.mul_f64(fastrand::f64())
    }

    fn bucket(&self, api: Api) -> Bucket {
        self.budgets
            .lock()
            .map(|b| match api {
                Api::Rest => b.rest,
                Api::Graphql => b.graphql,
            })
            .unwrap_or_default()
    }

    /// The last answer said the budget is spent: wait for its reset first.
    async fn wait_for_budget(&self, api: Api) -> Result<(), GitHubError> {
        let bucket = self.bucket(api);
        let (Some(0), Some(reset_at)) = (bucket.remaining, bucket.reset_at) else {
            return Ok(());
        };
        let Ok(wait) = (reset_at - Utc::now()).to_std() else {
            return Ok(());
        };
        if wait > self.policy.max_rate_limit_wait {
            return Err(GitHubError::RateLimited { retry_at: reset_at });
        }
        tracing::info!(wait_ms = wait.as_millis() as u64, "GitHub budget spent: waiting for its reset");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn attempt(
        &self,
        api: Api,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        if_none_match: Option<http::HeaderValue>,
        what: &str,
    ) -> Outcome {
        let token = match self.token.bearer().await {
            Ok(t) => t,
            Err(e) if e.is_retryable() => return Outcome::Transient(anyhow::Error::new(e)),
            Err(e) => return Outcome::Fatal(e),
        };
        let crab = match api {
            Api::Rest => &self.rest,
            Api::Graphql => &self.graphql,
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        if let Some(etag) = if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        let mut auth = match http::HeaderValue::try_from(format!("Bearer {}", token.expose_secret())) {
            Ok(v) => v,
            Err(_) => return Outcome::Fatal(GitHubError::Forbidden("the token is not a valid header value".into())),
        };
        auth.set_sensitive(true);
        let request = match crab.build_request(builder.header(header::AUTHORIZATION, auth), body) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Fatal(GitHubError::Protocol(
                    anyhow::Error::new(e).context(format!("building {what}")),
                ));
            }
        };

        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        self.requests.fetch_add(1, Ordering::Relaxed);
        crate::ports::tally_request(&self.name);
        let exchange = async {
            let response = crab.execute(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
            Ok::<_, octocrab::Error>((parts, bytes))
        };
        let (parts, bytes) = match tokio::time::timeout(self.policy.request_timeout, exchange).await {
            Err(_) => return Outcome::Transient(anyhow!("{what}: no answer within {:?}", self.policy.request_timeout)),
            Ok(Err(e)) => return Outcome::Transient(anyhow::Error::new(e).context(format!("sending {what}"))),
            Ok(Ok(x)) => x,
        };
        drop(_permit);
        self.record_budget(api, &parts.headers);
        if parts.status == StatusCode::NOT_MODIFIED {
            return Outcome::NotModified;
        }
        self.judge(api, parts.status, parts.headers, bytes.to_vec(), what)
    }

    fn record_budget(&self, api: Api, headers: &HeaderMap) {
        let num =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let (remaining, limit, reset) =
            (num("x-ratelimit-remaining"), num("x-ratelimit-limit"), num("x-ratelimit-reset"));
        if remaining.is_none() && limit.is_none() && reset.is_none() {
            return;
        }
        let bucket = Bucket { remaining, limit, reset_at: reset.and_then(|s| Utc.timestamp_opt(s as i64, 0).single()) };
        if let Ok(mut b) = self.budgets.lock() {
            match api {
                Api::Rest => b.rest = bucket,
                Api::Graphql => b.graphql = bucket,
            }
            b.last = bucket;
        }
    }

    fn judge(&self, api: Api, status: StatusCode, headers: HeaderMap, body: Vec<u8>, what: &str) -> Outcome {
        if status.is_success() {
            // GraphQL reports a spent budget as a 200 with a RATE_LIMITED error.
            if api == Api::Graphql && graphql_rate_limited(&body) {
                let until = self.bucket(api).reset_at.unwrap_or_else(|| Utc::now() + self.policy.secondary_limit_wait);
                return Outcome::RateLimited { until };
            }
            return Outcome::Done(Reply { headers, body });
        }
        let message = error_message(&body);
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            // Any wait past the longest one waited has the same effect; a bound keeps `now + after` in range.
            .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS)));
        if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
            let bucket = self.bucket(api);
            let secondary = message.to_ascii_lowercase().contains("secondary rate limit");
            if let Some(after) = retry_after {
                return Outcome::RateLimited { until: Utc::now() + after };
            }
            if bucket.remaining == Some(0) {
                let until = bucket.reset_at.unwrap_or_else(|| Utc::now() + self.policy.secondary_limit_wait);
                return Outcome::RateLimited { until };
            }
            if secondary || status == StatusCode::TOO_MANY_REQUESTS {
                return Outcome::RateLimited { until: Utc::now() + self.policy.secondary_limit_wait };
            }
            return Outcome::Fatal(GitHubError::Forbidden(format!("{what}: {message}")));
        }
        if status.is_server_error() {
            return Outcome::Transient(anyhow!("{what}: GitHub answered {status}: {message}"));
        }
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return match headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
                Some(location) => Outcome::Redirect(location.to_owned()),
                None => Outcome::Fatal(GitHubError::Protocol(anyhow!(
                    "{what}: GitHub answered {status} without a Location"
                ))),
            };
        }
        match status {
            StatusCode::UNAUTHORIZED => Outcome::Fatal(GitHubError::Forbidden(format!("{what}: {message}"))),
            StatusCode::NOT_FOUND | StatusCode::GONE => Outcome::Fatal(GitHubError::NotFound(what.to_owned())),
            _ => Outcome::Fatal(GitHubError::Protocol(anyhow!("{what}: GitHub answered {status}: {message}"))),
        }
    }
}

mod answers;
mod etag;
mod redirect;

pub(crate) use answers::*;
pub(crate) use etag::*;
pub(crate) use redirect::*;

#[cfg(test)]
mod tests;

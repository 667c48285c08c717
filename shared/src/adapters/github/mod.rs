//! The [`GitHubSource`] adapter on octocrab: GraphQL for bulk reads (batched
//! repository snapshots, pull requests with nested reviews, teams), REST where
//! GraphQL has no equivalent (workflow runs, hooks and their deliveries).
//!
//! Every request goes through one polite transport: a concurrency cap, the
//! `x-ratelimit-*` headers (waiting for the reset when the budget is spent),
//! `Retry-After` and secondary limits, and jittered exponential backoff on 5xx
//! and timeouts. See [`RetryPolicy`].

pub mod jwt;
pub mod queries;

mod model;
mod transport;

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use http::Method;
use octocrab::Octocrab;
use serde_json::json;

use crate::config::{GitHubCredentials, GitHubSettings};
use crate::domain::*;
use crate::ports::*;
use jwt::AppKey;
use model::*;
pub use transport::RetryPolicy;
use transport::{AppTokens, TokenSource, Transport};

/// `https://api.github.com`, when `GITHUB_API_URL` is not set.
pub const PUBLIC_API_URL: &str = "https://api.github.com";

#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// The REST base URL: `https://api.github.com`, or `https://HOST/api/v3`
    /// on GitHub Enterprise Server (GraphQL is then `https://HOST/api/graphql`).
    pub api_url: String,
    /// A GitHub App without an installation id must have exactly one
    /// installation; its installation tokens are refreshed before they expire.
    pub auth: GitHubCredentials,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
}

impl GitHubConfig {
    pub fn new(api_url: impl Into<String>, auth: GitHubCredentials) -> Self {
        Self { api_url: api_url.into(), auth, max_concurrency: 4, retry: RetryPolicy::default() }
    }

    /// The client configuration of loaded settings.
    pub fn of(settings: &GitHubSettings) -> Self {
        Self::new(settings.api_url.clone(), settings.credentials.clone())
    }
}

/// The base URL GraphQL requests are sent under (`{base}/graphql`): the REST
/// base itself, except on GitHub Enterprise Server where `HOST/api/v3` has its
/// GraphQL endpoint at `HOST/api/graphql`.
pub fn graphql_base(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api"),
        None => base.to_owned(),
    }
}

/// The one installation of a GitHub App (`GET /app/installations`, as the app).
async fn sole_installation(client: &Octocrab, key: &AppKey, app_id: u64) -> Result<u64, GitHubError> {
    #[derive(serde::Deserialize)]
    struct Installation {
        id: u64,
    }
    let installs: Vec<Installation> = transport::app_request(
        client,
        key,
        app_id,
        Method::GET,
        "/app/installations?per_page=100",
        "listing the app's installations",
    )
    .await?;
    match installs.as_slice() {
        [one] => Ok(one.id),
        other => Err(GitHubError::Forbidden(format!(
            "the GitHub App has {} installations: set its installation id",
            other.len()
        ))),
    }
}

/// The GitHub API client behind [`GitHubSource`].
pub struct GitHubClient {
    transport: Transport,
    /// The REST base, to turn `Link` header URLs back into relative paths.
    rest_base: String,
}

impl fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubClient").field("api_url", &self.rest_base).finish_non_exhaustive()
    }
}

fn crab(base: &str) -> Result<Octocrab, GitHubError> {
    Octocrab::builder()
        .base_uri(base)
        .with_context(|| format!("GitHub API URL {base:?}"))
        .and_then(|b| b.build().context("building the HTTP client"))
        .map_err(GitHubError::Protocol)
}

impl GitHubClient {
    /// A client for `config`. With a GitHub App and no installation id, this
    /// looks the installation up (one request).
    pub async fn new(config: GitHubConfig) -> Result<Self, GitHubError> {
        let rest_base = config.api_url.trim_end_matches('/').to_owned();
        let rest = crab(&rest_base)?;
        let graphql = crab(&graphql_base(&rest_base))?;
        let token = match config.auth {
            GitHubCredentials::Token(t) => TokenSource::Static(t.into()),
            GitHubCredentials::App { app_id, private_key_pem, installation_id } => {
                let key = AppKey::from_pem(&private_key_pem).map_err(|e| {
                    GitHubError::Forbidden(format!("the GitHub App private key is not an RSA PEM key: {e}"))
                })?;
                let client = crab(&rest_base)?;
                let installation_id = match installation_id {
                    Some(id) => id,
                    None => sole_installation(&client, &key, app_id).await?,
                };
                TokenSource::App(Box::new(AppTokens {
                    app_id,
                    key,
                    installation_id,
                    client,
                    cached: tokio::sync::Mutex::new(None),
                }))
            }
        };
        Ok(Self { transport: Transport::new(rest, graphql, token, config.max_concurrency, config.retry), rest_base })
    }

    /// A `Link` URL as a path relative to the REST base (so that the base
    /// layer and the credentials apply to it as to any other request).
    fn relative(&self, url: &str) -> String {
        if let Some(rest) = url.strip_prefix(&self.rest_base) {
            return rest.to_owned();
        }
        match url.parse::<http::Uri>() {
            Ok(uri) => uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| url.to_owned()),
            Err(_) => url.to_owned(),
        }
    }

    /// GET every page of a REST list, following `Link: rel="next"`.
    /// `keep_going` sees each page and may stop early.
    async fn rest_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        mut on_page: impl FnMut(T) -> bool,
    ) -> Result<(), GitHubError> {
        let mut next = Some(first);
        while let Some(path) = next.take() {
            let reply = self.transport.rest(Method::GET, &path, None).await?;
            let link = reply.headers.get(http::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
            let page: T = reply.json(&path)?;
            if !on_page(page) {
                break;
            }
            next = link.map(|l| self.relative(&l));
        }
        Ok(())
    }

    async fn repo_batch(&self, repos: &[RepoName]) -> Result<Vec<RepoSnapshot>, GitHubError> {
        let mut vars = serde_json::Map::new();
        for (i, r) in repos.iter().enumerate() {
            vars.insert(format!("o{i}"), json!(r.owner()));
            vars.insert(format!("n{i}"), json!(r.name()));
        }
        let doc = queries::repo_snapshots_document(repos.len());
        let mut data: serde_json::Map<String, serde_json::Value> =
            self.transport.graphql_partial(&doc, serde_json::Value::Object(vars)).await?;
        let mut out = Vec::with_capacity(repos.len());
        for (i, repo) in repos.iter().enumerate() {
            match data.remove(&queries::repo_alias(i)) {
                Some(serde_json::Value::Null) | None => {
                    tracing::warn!(%repo, "repository not found on GitHub (or not visible to these credentials)");
                }
                Some(v) => {
                    let node: RepoSnapshotNode = serde_json::from_value(v)
                        .with_context(|| format!("snapshot of {repo}"))
                        .map_err(GitHubError::Protocol)?;
                    out.push(node.into_snapshot(repo.clone()));
                }
            }
        }
        Ok(out)
    }

    async fn more_reviews(&self, repo: &RepoName, number: u64, mut after: String) -> Result<Vec<Review>, GitHubError> {
        let mut out = Vec::new();
        loop {
            let vars = json!({ "owner": repo.owner(), "name": repo.name(), "number": number, "after": after });
            let data: RepoData<PullOf> = self.transport.graphql(&queries::pull_reviews(), vars).await?;
            let reviews = data
                .repository
                .and_then(|r| r.pull_request)
                .ok_or_else(|| GitHubError::NotFound(format!("{repo}#{number}")))?
                .reviews;
            for r in reviews.nodes {
                out.push(r.into_review(repo, number).map_err(GitHubError::Protocol)?);
            }
            match reviews.page_info.next() {
                Some(c) => after = c,
                None => return Ok(out),
            }
        }
    }

    async fn more_members(&self, org: &str, slug: &str, mut after: String) -> Result<Vec<String>, GitHubError> {
        let mut out = Vec::new();
        loop {
            let vars = json!({ "org": org, "slug": slug, "after": after });
            let data: OrgData<TeamOf<MembersOf>> = self.transport.graphql(queries::TEAM_MEMBERS, vars).await?;
            let members = data
                .organization
                .and_then(|o| o.team)
                .ok_or_else(|| GitHubError::NotFound(format!("team {org}/{slug}")))?
                .members;
            out.extend(members.nodes.into_iter().map(|m| m.login));
            match members.page_info.next() {
                Some(c) => after = c,
                None => return Ok(out),
            }
        }
    }

    fn hook_path(hook: &HookRef) -> String {
        match hook {
            HookRef::Repo { repo, id } => format!("/repos/{}/{}/hooks/{id}", repo.owner(), repo.name()),
            HookRef::Org { org, id } => format!("/orgs/{org}/hooks/{id}"),
        }
    }
}

impl Budgeted for GitHubClient {
    fn budget(&self) -> RateBudget {
        self.transport.budget()
    }
}

#[async_trait]
impl GitHubChecks for GitHubClient {
    /// Batches of [`queries::SNAPSHOT_BATCH`] repositories per request. A
    /// repository GitHub does not know (or these credentials cannot see) is
    /// left out of the result, with a warning, rather than failing the batch.
    async fn repo_snapshots(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, GitHubError> {
        let names: Vec<RepoName> = repos.iter().map(|r| r.repo.clone()).collect();
        let mut out = Vec::with_capacity(repos.len());
        for batch in names.chunks(queries::SNAPSHOT_BATCH) {
            out.extend(self.repo_batch(batch).await?);
        }
        Ok(out)
    }

    async fn org_snapshots(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, GitHubError> {
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let mut teams = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let vars = json!({ "org": org, "after": after });
                let data: OrgData<TeamsOf<TeamCountNode>> = self.transport.graphql(queries::ORG_TEAMS, vars).await?;
                let page = data.organization.ok_or_else(|| GitHubError::NotFound(format!("organization {org}")))?.teams;
                teams.extend(page.nodes.into_iter().map(|t| (t.slug, t.members.total_count)));
                after = page.page_info.next();
                if after.is_none() {
                    break;
                }
            }
            out.push(OrgSnapshot { org: org.clone(), teams, repos_total: None, recent_repos: Vec::new() });
        }
        Ok(out)
    }

    async fn run_window(&self, _repo: &RepoName, _since: Option<Timestamp>) -> Result<RunWindow, GitHubError> {
        Err(GitHubError::Protocol(anyhow::anyhow!("run_window: being built")))
    }

    async fn job_counts(&self, _node_ids: &[String]) -> Result<Vec<JobCount>, GitHubError> {
        Err(GitHubError::Protocol(anyhow::anyhow!("job_counts: being built")))
    }
}

#[async_trait]
impl GitHubSource for GitHubClient {
    async fn pull_requests(&self, repo: &RepoName, cursor: Option<&str>) -> Result<PullPage, GitHubError> {
        let vars = json!({ "owner": repo.owner(), "name": repo.name(), "after": cursor });
        let data: RepoData<PullsOf> = self.transport.graphql(&queries::pull_requests(), vars).await?;
        let page = data.repository.ok_or_else(|| GitHubError::NotFound(format!("repository {repo}")))?.pull_requests;
        let next_cursor = page.page_info.next();
        let total = page.total_count;
        let mut pulls = Vec::with_capacity(page.nodes.len());
        for node in page.nodes {
            let (pr, mut reviews, more) = node.into_parts(repo).map_err(GitHubError::Protocol)?;
            if let Some(after) = more {
                reviews.extend(self.more_reviews(repo, pr.number, after).await?);
            }
            pulls.push((pr, reviews));
        }
        Ok(PullPage { pulls, next_cursor, total, skipped: Vec::new() })
    }

    async fn teams(&self, org: &str) -> Result<Vec<TeamRoster>, GitHubError> {
        let read_at = Utc::now();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "org": org, "after": after });
            let data: OrgData<TeamsOf<TeamNode>> = self.transport.graphql(queries::TEAMS, vars).await?;
            let page = data.organization.ok_or_else(|| GitHubError::NotFound(format!("organization {org}")))?.teams;
            for node in page.nodes {
                let team = node.team(org, read_at);
                let more = node.members.page_info.next();
                let mut members: Vec<String> = node.members.nodes.into_iter().map(|m| m.login).collect();
                if let Some(after) = more {
                    members.extend(self.more_members(org, &node.slug, after).await?);
                }
                out.push(TeamRoster { team, members });
            }
            after = page.page_info.next();
            if after.is_none() {
                return Ok(out);
            }
        }
    }

    async fn org_repos(&self, org: &str) -> Result<Vec<RepoName>, GitHubError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "org": org, "after": after });
            let data: OrgData<ReposOf> = self.transport.graphql(queries::ORG_REPOS, vars).await?;
            let page =
                data.organization.ok_or_else(|| GitHubError::NotFound(format!("organization {org}")))?.repositories;
            for r in page.nodes {
                out.push(
                    RepoName::parse(&r.name_with_owner).map_err(|e| GitHubError::Protocol(anyhow::Error::new(e)))?,
                );
            }
            after = page.page_info.next();
            if after.is_none() {
                return Ok(out);
            }
        }
    }

    async fn branches(&self, repo: &RepoName) -> Result<Vec<Branch>, GitHubError> {
        let read_at = Utc::now();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "owner": repo.owner(), "name": repo.name(), "after": after });
            let data: RepoData<BranchesOf> = self.transport.graphql(queries::BRANCHES, vars).await?;
            let found = data.repository.ok_or_else(|| GitHubError::NotFound(format!("repository {repo}")))?;
            let version = found.pushed_at.unwrap_or(read_at);
            let Some(refs) = found.refs else { return Ok(out) };
            for r in refs.nodes {
                out.push(Branch {
                    repo: repo.clone(),
                    name: r.name,
                    head_sha: r.target.map(|t| t.oid),
                    deleted: false,
                    version,
                });
            }
            after = refs.page_info.next();
            if after.is_none() {
                return Ok(out);
            }
        }
    }

    async fn workflow_runs(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<Vec<ListedRun>, GitHubError> {
        let since = since.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let created = format!(">={}", since.to_rfc3339_opts(SecondsFormat::Secs, true));
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("created", &created)
            .append_pair("per_page", "100")
            .finish();
        let first = format!("/repos/{}/{}/actions/runs?{query}", repo.owner(), repo.name());
        let mut out = Vec::new();
        self.rest_pages(first, |page: WorkflowRunsPage| {
            let any = !page.workflow_runs.is_empty();
            out.extend(
                page.workflow_runs.into_iter().map(|r| ListedRun {
                    run: crate::webhook::normalize::workflow_run(repo.clone(), r),
                    node_id: None,
                }),
            );
            any
        })
        .await?;
        Ok(out)
    }

    async fn workflow_jobs(&self, _repo: &RepoName, _run_id: i64) -> Result<Vec<WorkflowJob>, GitHubError> {
        Err(GitHubError::Protocol(anyhow::anyhow!("workflow_jobs: being built")))
    }

    async fn deployments(
        &self,
        _repo: &RepoName,
        _since: Option<Timestamp>,
    ) -> Result<Vec<DeploymentWithStatuses>, GitHubError> {
        Err(GitHubError::Protocol(anyhow::anyhow!("deployments: being built")))
    }

    async fn branch_commits(
        &self,
        _repo: &RepoName,
        _branch: &str,
        _since: Option<Timestamp>,
    ) -> Result<Vec<Commit>, GitHubError> {
        Err(GitHubError::Protocol(anyhow::anyhow!("branch_commits: being built")))
    }
}

#[async_trait]
impl GitHubHooks for GitHubClient {
    async fn hooks(&self, target: &HookTarget) -> Result<Vec<HookRef>, GitHubError> {
        let first = match target {
            HookTarget::Repo(repo) => format!("/repos/{}/{}/hooks?per_page=100", repo.owner(), repo.name()),
            HookTarget::Org(org) => format!("/orgs/{org}/hooks?per_page=100"),
        };
        let mut out = Vec::new();
        self.rest_pages(first, |page: Vec<RestHook>| {
            out.extend(page.into_iter().map(|h| match target {
                HookTarget::Repo(repo) => HookRef::Repo { repo: repo.clone(), id: h.id },
                HookTarget::Org(org) => HookRef::Org { org: org.clone(), id: h.id },
            }));
            true
        })
        .await?;
        Ok(out)
    }

    async fn failed_deliveries(&self, hook: &HookRef, since: Timestamp) -> Result<Vec<HookDelivery>, GitHubError> {
        let first = format!("{}/deliveries?per_page=100", Self::hook_path(hook));
        let mut out = Vec::new();
        // Deliveries come newest first: stop at the first page reaching before `since`.
        self.rest_pages(first, |page: Vec<RestDelivery>| {
            let mut reached_older = page.is_empty();
            for d in page {
                if d.delivered_at < since {
                    reached_older = true;
                    continue;
                }
                if !(200..300).contains(&d.status_code) {
                    out.push(HookDelivery::from(d));
                }
            }
            !reached_older
        })
        .await?;
        Ok(out)
    }

    async fn redeliver(&self, hook: &HookRef, delivery_id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/deliveries/{delivery_id}/attempts", Self::hook_path(hook));
        self.transport.rest(Method::POST, &path, Some(&json!({}))).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_endpoint_follows_the_rest_base() {
        assert_eq!(graphql_base("https://api.github.com"), "https://api.github.com");
        assert_eq!(graphql_base("https://ghe.example.com/api/v3/"), "https://ghe.example.com/api");
        assert_eq!(graphql_base("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let token = GitHubConfig::new(PUBLIC_API_URL, GitHubCredentials::Token("ghp_secret123".into()));
        let app = GitHubCredentials::App {
            app_id: 1,
            private_key_pem: "-----BEGIN RSA PRIVATE KEY-----abc".into(),
            installation_id: None,
        };
        let shown = format!("{token:?} {app:?}");
        assert!(!shown.contains("ghp_secret123") && !shown.contains("BEGIN RSA"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}

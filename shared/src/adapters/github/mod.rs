//! The [`GitHubSource`] adapter on octocrab: GraphQL for bulk reads (batched
//! repository snapshots, pull requests with nested reviews, teams, job counts
//! by run node id, branch history), REST where GraphQL has no equivalent
//! (workflow runs and their jobs, deployments and their statuses, hooks and
//! their deliveries).
//!
//! GitHub's answers are outside input: a list item that is `null` (GraphQL
//! connection `nodes` are nullable; a partial answer nulls what it could not
//! read, with an error naming its path) or of an unexpected shape is left out
//! and reported, never failing the rest of the read. REST reads are
//! conditional (`If-None-Match`), so repeating one that did not change costs
//! no rate budget.
//!
//! Every request goes through a polite transport: a concurrency cap, the
//! `x-ratelimit-*` headers (waiting for the reset when the budget is spent),
//! `Retry-After` and secondary limits, and jittered exponential backoff on 5xx
//! and timeouts. See [`RetryPolicy`]. A GitHub App has one such transport per
//! installation, and a request goes through the installation on the owner of
//! the repository or organisation it is about (see `installations`).

pub mod dispatch_tokens;
pub mod jwt;
pub mod queries;

mod checks;
mod hooks;
mod installations;
mod model;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use http::Method;
use installations::{Route, Routes};
use octocrab::Octocrab;
use serde_json::json;

use crate::config::{GitHubCredentials, GitHubSettings};
use crate::domain::*;
use crate::ports::*;
use crate::webhook::normalize;
pub use dispatch_tokens::AppDispatchTokens;
use jwt::AppKey;
use model::*;
pub use transport::RetryPolicy;
use transport::{AppTokens, PathSegment, TokenSource, Transport};

/// `https://api.github.com`, when `GITHUB_API_URL` is not set.
pub const PUBLIC_API_URL: &str = "https://api.github.com";

#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// The REST base URL: `https://api.github.com`, or `https://HOST/api/v3`
    /// on GitHub Enterprise Server (GraphQL is then `https://HOST/api/graphql`).
    pub api_url: String,
    /// A GitHub App without an installation id uses every installation it
    /// has, each for its own account's repositories; with one, only that one.
    /// Installation tokens are refreshed before they expire.
    pub auth: GitHubCredentials,
    /// Requests in flight at once, per installation.
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

/// The GitHub API client behind [`GitHubSource`].
pub struct GitHubClient {
    /// One transport (token, rate budget, concurrency cap) per installation.
    routes: Routes,
    /// The REST base, to turn `Link` header URLs back into relative paths.
    rest_base: String,
}

impl fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubClient")
            .field("api_url", &self.rest_base)
            .field("installations", &self.routes.names())
            .finish_non_exhaustive()
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
    /// A client for `config`. With a GitHub App, this lists its installations
    /// (one request per 100, as the app; with an installation id, reads that
    /// one), to know which account each is on.
    pub async fn new(config: GitHubConfig) -> Result<Self, GitHubError> {
        let rest_base = config.api_url.trim_end_matches('/').to_owned();
        let rest = crab(&rest_base)?;
        let graphql = crab(&graphql_base(&rest_base))?;
        let base_uri: http::Uri = rest_base
            .parse()
            .map_err(|e| GitHubError::Protocol(anyhow::anyhow!("GitHub API URL {rest_base:?}: {e}")))?;
        let transport = |name: &str, token: TokenSource| {
            Transport::new(
                name.to_owned(),
                rest.clone(),
                base_uri.clone(),
                graphql.clone(),
                token,
                config.max_concurrency,
                config.retry.clone(),
            )
        };
        let routes = match config.auth {
            GitHubCredentials::Token(t) => Routes::One(Box::new(Route {
                name: InstallationRequests::TOKEN.to_owned(),
                transport: transport(InstallationRequests::TOKEN, TokenSource::Static(t.into())),
            })),
            GitHubCredentials::App { app_id, private_key_pem, installation_id } => {
                let key = Arc::new(AppKey::from_pem(&private_key_pem).map_err(|e| {
                    GitHubError::Forbidden(format!("the GitHub App private key is not an RSA PEM key: {e}"))
                })?);
                let client = crab(&rest_base)?;
                let listed = match installation_id {
                    Some(id) => vec![installations::installation(&client, &key, app_id, id).await?],
                    None => installations::installations(&client, &key, app_id).await?,
                };
                let mut routes = BTreeMap::new();
                for install in listed {
                    let tokens = AppTokens {
                        app_id,
                        key: key.clone(),
                        installation_id: install.id,
                        client: client.clone(),
                        cached: tokio::sync::Mutex::new(None),
                        granted: std::sync::Mutex::new(None),
                    };
                    let route = Route {
                        name: install.account.login.clone(),
                        transport: transport(&install.account.login, TokenSource::App(Box::new(tokens))),
                    };
                    routes.insert(install.account.login.to_ascii_lowercase(), route);
                }
                match (installation_id, routes.pop_first()) {
                    (Some(_), Some((_, one))) => Routes::One(Box::new(one)),
                    (_, first) => {
                        routes.extend(first);
                        Routes::ByOwner(routes)
                    }
                }
            }
        };
        tracing::info!(installations = ?routes.names(), "GitHub budgets");
        Ok(Self { routes, rest_base })
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
        owner: &str,
        first: String,
        mut on_page: impl FnMut(T) -> bool,
    ) -> Result<(), GitHubError> {
        let t = self.routes.of(owner)?;
        let mut next = Some(first);
        while let Some(path) = next.take() {
            let reply = t.rest(Method::GET, &path, None).await?;
            let link = reply.headers.get(http::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
            let page: T = reply.json(&path)?;
            if !on_page(page) {
                break;
            }
            next = link.map(|l| self.relative(&l));
        }
        Ok(())
    }

    async fn repo_batch(&self, t: &Transport, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, GitHubError> {
        let mut vars = serde_json::Map::new();
        // Deployments are asked for only when the credentials may read them:
        // GitHub would null each whole repository for that field.
        vars.insert("deployments".into(), json!(t.may_read("deployments").await?));
        for (i, r) in repos.iter().enumerate() {
            vars.insert(format!("o{i}"), json!(r.repo.owner()));
            vars.insert(format!("n{i}"), json!(r.repo.name()));
            vars.insert(format!("s{i}"), json!(r.since.map(git_timestamp)));
        }
        let doc = queries::repo_snapshots_document(repos.len());
        let (mut data, errors): (serde_json::Map<String, serde_json::Value>, _) =
            t.graphql_lenient(&doc, serde_json::Value::Object(vars)).await?;
        let mut out = Vec::with_capacity(repos.len());
        for (i, req) in repos.iter().enumerate() {
            let repo = &req.repo;
            let alias = queries::repo_alias(i);
            let at = At::new(&errors, &[alias.as_str()]);
            match data.remove(&alias) {
                Some(serde_json::Value::Null) | None => {
                    let why: Vec<String> = errors.iter().filter(|e| e.is_under(&at.path)).map(|e| e.reason()).collect();
                    tracing::warn!(%repo, why = %why.join("; "), "repository not found on GitHub (or not visible to these credentials)");
                }
                Some(v) => match serde_json::from_value::<RepoSnapshotNode>(v) {
                    Ok(node) => {
                        for e in errors.iter().filter(|e| e.is_under(&at.path)) {
                            tracing::warn!(%repo, why = %e.reason(), "part of a snapshot left out");
                        }
                        out.push(node.into_snapshot(repo.clone(), req.since, &at));
                    }
                    Err(e) => {
                        tracing::warn!(%repo, error = %e, "snapshot left out: GitHub's answer for it is unreadable")
                    }
                },
            }
        }
        Ok(out)
    }

    async fn more_reviews(
        &self,
        repo: &RepoName,
        number: u64,
        mut after: String,
    ) -> Result<(Vec<Review>, Vec<Skipped>), GitHubError> {
        let t = self.routes.of(repo.owner())?;
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        loop {
            let vars = json!({ "owner": repo.owner(), "name": repo.name(), "number": number, "after": after });
            let (data, errors): (RepoData<PullOf>, _) = t.graphql_lenient(&queries::pull_reviews(), vars).await?;
            let Some(reviews) = data.repository.and_then(|r| r.pull_request).map(|p| p.reviews) else {
                return Err(t.graphql_failure("PullReviews", &errors, format!("{repo}#{number}")));
            };
            let at = At::new(&errors, &["repository", "pullRequest", "reviews", "nodes"]);
            let (page, left_out) = reviews_of(reviews.nodes, repo, number, &at);
            out.extend(page);
            skipped.extend(left_out);
            match reviews.page_info.next() {
                Some(c) => after = c,
                None => return Ok((out, skipped)),
            }
        }
    }

    async fn more_members(&self, org: &str, slug: &str, mut after: String) -> Result<Vec<String>, GitHubError> {
        let t = self.routes.of(org)?;
        let mut out = Vec::new();
        loop {
            let vars = json!({ "org": org, "slug": slug, "after": after });
            let data: OrgData<TeamOf<MembersOf>> = t.graphql(queries::TEAM_MEMBERS, vars).await?;
            let members = data
                .organization
                .and_then(|o| o.team)
                .ok_or_else(|| GitHubError::NotFound(format!("team {org}/{slug}")))?
                .members;
            let next = members.page_info.next();
            out.extend(
                readable(members.nodes, &At::none(), |i| format!("member #{i} of team {org}/{slug}"))
                    .into_iter()
                    .map(|m| m.login),
            );
            match next {
                Some(c) => after = c,
                None => return Ok(out),
            }
        }
    }

    /// One page of a repository's workflow runs created in `created` (a
    /// GitHub `created` filter): its total, and its runs.
    async fn runs_page(
        &self,
        repo: &RepoName,
        created: Option<&str>,
        page: u32,
    ) -> Result<(u64, Vec<Item<RestRun>>), GitHubError> {
        let t = self.routes.of(repo.owner())?;
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(created) = created {
                query.append_pair("created", created);
            }
            query.append_pair("per_page", &RUNS_PER_PAGE.to_string());
            if page > 1 {
                query.append_pair("page", &page.to_string());
            }
            query.finish()
        };
        let path = format!("/repos/{}/{}/actions/runs?{query}", repo.owner(), repo.name());
        let reply = t.rest(Method::GET, &path, None).await?;
        let page: WorkflowRunsPage = reply.json(&path)?;
        Ok((page.total_count, page.workflow_runs))
    }

    fn listed_runs(repo: &RepoName, runs: Vec<Item<RestRun>>) -> Vec<ListedRun> {
        readable(runs, &At::none(), |i| format!("listed workflow run #{i} of {repo}"))
            .into_iter()
            .map(|r| ListedRun { run: normalize::workflow_run(repo.clone(), r.run), node_id: r.node_id })
            .collect()
    }

    /// Whose installation reads and redelivers a hook's deliveries.
    fn hook_owner(hook: &HookRef) -> &str {
        match hook {
            HookRef::Repo { repo, .. } => repo.owner(),
            HookRef::Org { org, .. } => org,
        }
    }

    fn hook_path(hook: &HookRef) -> String {
        match hook {
            HookRef::Repo { repo, id } => format!("/repos/{}/{}/hooks/{id}", repo.owner(), repo.name()),
            HookRef::Org { org, id } => format!("/orgs/{org}/hooks/{id}"),
        }
    }
}

/// Runs per REST page (GitHub's most).
const RUNS_PER_PAGE: usize = 100;

/// GitHub lists at most this many results of a run list filtered by
/// `created` (or by actor, branch, event, ...); later pages are refused.
pub const FILTERED_RUNS_CAP: usize = 1_000;

/// A time as GitHub's `GitTimestamp` and REST `created` filters take it.
fn git_timestamp(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whole seconds: GitHub's `created` filter has no finer grain.
fn to_second(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The `created` filter of a window of runs: from `since` (inclusive) to
/// `until` (inclusive; open when None).
fn created_filter(since: Timestamp, until: Option<Timestamp>) -> String {
    match until {
        None => format!(">={}", git_timestamp(since)),
        Some(until) => format!("{}..{}", git_timestamp(since), git_timestamp(until)),
    }
}

#[async_trait]
impl GitHubSource for GitHubClient {
    /// A `null` pull request node (or one GitHub answered with an error) is
    /// left out and named in [`PullPage::skipped`]; the rest of the page is kept.
    async fn pull_requests(&self, repo: &RepoName, cursor: Option<&str>) -> Result<PullPage, GitHubError> {
        let t = self.routes.of(repo.owner())?;
        let vars = json!({ "owner": repo.owner(), "name": repo.name(), "after": cursor });
        let (data, errors): (RepoData<PullsOf>, _) = t.graphql_lenient(&queries::pull_requests(), vars).await?;
        let Some(found) = data.repository else {
            return Err(t.graphql_failure("PullRequests", &errors, format!("repository {repo}")));
        };
        let page = found.pull_requests;
        let next_cursor = page.page_info.next();
        let total = page.total_count;
        let nodes_at = At::new(&errors, &["repository", "pullRequests", "nodes"]);
        let what = |i: usize| format!("pull request #{i} of the page of {repo}");
        let mut pulls = Vec::with_capacity(page.nodes.len());
        let (nodes, mut skipped) = sort_items_indexed(page.nodes, &nodes_at, what);
        for (i, node) in nodes {
            let mut at = nodes_at.clone();
            at.path.push(PathSegment::Index(i));
            match node.into_parts(repo, &at) {
                Ok(PullParts { pr, mut reviews, more_reviews, skipped: left_out }) => {
                    skipped.extend(left_out);
                    if let Some(after) = more_reviews {
                        let (rest, left_out) = self.more_reviews(repo, pr.number, after).await?;
                        reviews.extend(rest);
                        skipped.extend(left_out);
                    }
                    pulls.push((pr, reviews));
                }
                Err(e) => skipped.push(Skipped { what: what(i), why: format!("{e:#}") }),
            }
        }
        warn_skipped(&skipped);
        Ok(PullPage { pulls, next_cursor, total, skipped })
    }

    async fn teams(&self, org: &str) -> Result<Vec<TeamRoster>, GitHubError> {
        let t = self.routes.of(org)?;
        if !t.may_read("members").await? {
            return Err(GitHubError::Forbidden(format!(
                "teams of {org}: the GitHub App's installation was not granted Members (read)"
            )));
        }
        let read_at = Utc::now();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "org": org, "after": after });
            let (data, errors): (OrgData<TeamsOf<TeamNode>>, _) = t.graphql_lenient(queries::TEAMS, vars).await?;
            let Some(found) = data.organization else {
                return Err(t.graphql_failure("Teams", &errors, format!("organization {org}")));
            };
            let page = found.teams;
            let at = At::new(&errors, &["organization", "teams", "nodes"]);
            for node in readable(page.nodes, &at, |i| format!("team #{i} of {org}")) {
                let team = node.team(org, read_at);
                let more = node.members.page_info.next();
                let mut members: Vec<String> =
                    readable(node.members.nodes, &At::none(), |i| format!("member #{i} of team {org}/{}", node.slug))
                        .into_iter()
                        .map(|m| m.login)
                        .collect();
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
        let t = self.routes.of(org)?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "org": org, "after": after });
            let (data, errors): (OrgData<ReposOf>, _) = t.graphql_lenient(queries::ORG_REPOS, vars).await?;
            let Some(found) = data.organization else {
                return Err(t.graphql_failure("OrgRepos", &errors, format!("organization {org}")));
            };
            let page = found.repositories;
            let at = At::new(&errors, &["organization", "repositories", "nodes"]);
            for r in readable(page.nodes, &at, |i| format!("repository #{i} of {org}")) {
                match RepoName::parse(&r.name_with_owner) {
                    Ok(name) => out.push(name),
                    Err(e) => tracing::warn!(name = %r.name_with_owner, error = %e, "repository name left out"),
                }
            }
            after = page.page_info.next();
            if after.is_none() {
                return Ok(out);
            }
        }
    }

    async fn branches(&self, repo: &RepoName) -> Result<Vec<Branch>, GitHubError> {
        let t = self.routes.of(repo.owner())?;
        let read_at = Utc::now();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({ "owner": repo.owner(), "name": repo.name(), "after": after });
            let (data, errors): (RepoData<BranchesOf>, _) = t.graphql_lenient(queries::BRANCHES, vars).await?;
            let Some(found) = data.repository else {
                return Err(t.graphql_failure("Branches", &errors, format!("repository {repo}")));
            };
            let version = found.pushed_at.unwrap_or(read_at);
            let Some(refs) = found.refs else { return Ok(out) };
            let at = At::new(&errors, &["repository", "refs", "nodes"]);
            for r in readable(refs.nodes, &at, |i| format!("branch #{i} of {repo}")) {
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

    /// Newest first, 100 per page, as windows of `created`. GitHub lists at
    /// most [`FILTERED_RUNS_CAP`] runs of a filtered list, so a window whose
    /// list reaches that cap is split in two by time, the way Apache DevLake's
    /// collector splits its windows: the newer part is what GitHub listed (all
    /// of it read), the older part — from `since` to the creation second of
    /// the oldest run listed, inclusive — is the next window. Splitting there
    /// rather than at the window's middle wastes no request: every page read
    /// is kept, so N runs cost ⌈N/100⌉ pages plus about one page per 1,000
    /// runs (a window's overlap, and its last, short page). A run listed twice
    /// (the shared second, or a run created while paging) is kept once.
    async fn workflow_runs(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<Vec<ListedRun>, GitHubError> {
        let since = to_second(since.unwrap_or(chrono::DateTime::UNIX_EPOCH));
        let mut until: Option<Timestamp> = None;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        loop {
            let created = created_filter(since, until);
            let (mut listed, mut oldest) = (0usize, None::<Timestamp>);
            for page in 1u32.. {
                let (total, runs) = self.runs_page(repo, Some(&created), page).await?;
                let on_page = runs.len();
                listed += on_page;
                for run in Self::listed_runs(repo, runs) {
                    oldest = Some(oldest.map_or(run.run.created_at, |o: Timestamp| o.min(run.run.created_at)));
                    if seen.insert(run.run.id) {
                        out.push(run);
                    }
                }
                let reachable = (total as usize).min(FILTERED_RUNS_CAP);
                if on_page < RUNS_PER_PAGE || listed >= reachable {
                    break;
                }
            }
            if listed < FILTERED_RUNS_CAP {
                break; // the window was listed whole
            }
            let Some(oldest) = oldest.map(to_second) else { break };
            if until == Some(oldest) || oldest < since {
                return Err(GitHubError::Protocol(anyhow::anyhow!(
                    "{repo}: {FILTERED_RUNS_CAP} or more workflow runs created within the second {}: \
                     GitHub cannot list them all",
                    git_timestamp(oldest)
                )));
            }
            until = Some(oldest);
        }
        out.sort_by(|a, b| b.run.created_at.cmp(&a.run.created_at).then(b.run.id.cmp(&a.run.id)));
        Ok(out)
    }

    async fn workflow_jobs(&self, repo: &RepoName, run_id: i64) -> Result<Vec<WorkflowJob>, GitHubError> {
        let first =
            format!("/repos/{}/{}/actions/runs/{run_id}/jobs?filter=all&per_page=100", repo.owner(), repo.name());
        let mut out = Vec::new();
        self.rest_pages(repo.owner(), first, |page: WorkflowJobsPage| {
            let any = !page.jobs.is_empty();
            out.extend(
                readable(page.jobs, &At::none(), |i| format!("job #{i} of run {run_id} of {repo}"))
                    .into_iter()
                    .map(|j| normalize::workflow_job(repo.clone(), j)),
            );
            any
        })
        .await?;
        Ok(out)
    }

    /// One request per 100 deployments (newest first, stopping at the first
    /// created before `since`), and one per deployment for its statuses.
    async fn deployments(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
    ) -> Result<Vec<DeploymentWithStatuses>, GitHubError> {
        let first = format!("/repos/{}/{}/deployments?per_page=100", repo.owner(), repo.name());
        let mut found = Vec::new();
        self.rest_pages(repo.owner(), first, |page: DeploymentsList| {
            let mut reached_older = page.is_empty();
            for d in readable(page, &At::none(), |i| format!("listed deployment #{i} of {repo}")) {
                if since.is_some_and(|s| d.created_at.0 < s) {
                    reached_older = true;
                    continue;
                }
                found.push(normalize::deployment(repo.clone(), d));
            }
            !reached_older
        })
        .await?;
        let mut out = Vec::with_capacity(found.len());
        for deployment in found {
            let id = deployment.id;
            let first = format!("/repos/{}/{}/deployments/{id}/statuses?per_page=100", repo.owner(), repo.name());
            let mut statuses = Vec::new();
            self.rest_pages(repo.owner(), first, |page: DeploymentStatusesList| {
                let any = !page.is_empty();
                statuses.extend(
                    readable(page, &At::none(), |i| format!("status #{i} of deployment {id} of {repo}"))
                        .into_iter()
                        .map(|s| normalize::deployment_status(repo.clone(), id, s)),
                );
                any
            })
            .await?;
            out.push(DeploymentWithStatuses { deployment, statuses });
        }
        Ok(out)
    }

    async fn branch_commits(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<Commit>, GitHubError> {
        let t = self.routes.of(repo.owner())?;
        let qualified = format!("refs/heads/{branch}");
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let vars = json!({
                "owner": repo.owner(), "name": repo.name(), "qualified": qualified,
                "since": since.map(git_timestamp), "after": after,
            });
            let (data, errors): (RepoData<RefOf>, _) = t.graphql_lenient(queries::BRANCH_COMMITS, vars).await?;
            let Some(found) = data.repository else {
                return Err(t.graphql_failure("BranchCommits", &errors, format!("repository {repo}")));
            };
            let Some(history) = found.git_ref.and_then(|r| r.target).and_then(|t| t.history) else {
                // GitHub's reason when it gave one (FORBIDDEN: no Contents), else the branch is gone.
                if !errors.is_empty() {
                    return Err(t.graphql_failure("BranchCommits", &errors, format!("branch {branch} of {repo}")));
                }
                if after.is_none() {
                    return Err(GitHubError::NotFound(format!("branch {branch} of {repo}")));
                }
                return Ok(out);
            };
            let at = At::new(&errors, &["repository", "ref", "target", "history", "nodes"]);
            out.extend(
                readable(history.nodes, &at, |i| format!("commit #{i} of {repo}@{branch}"))
                    .into_iter()
                    .map(|c| c.into_commit(repo)),
            );
            after = history.page_info.next();
            if after.is_none() {
                return Ok(out);
            }
        }
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

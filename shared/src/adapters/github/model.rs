//! The shapes of GitHub's answers (only the fields the documents ask for) and
//! their mapping into domain types.

use anyhow::{Context as _, anyhow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::transport::{GraphqlError, PathSegment};
use crate::domain::*;
use crate::ports::{DeploymentMark, HookDelivery, JobCount, PullMark, RepoSnapshot, Skipped};
use crate::webhook::payload::{DeploymentPayload, DeploymentStatusPayload, WorkflowJobPayload, WorkflowRunPayload};

/// One element of a list GitHub sent (a GraphQL connection's `nodes`, which
/// are nullable, or a REST array), read on its own: a `null` or an element
/// of another shape is kept as such instead of failing the whole answer.
#[derive(Debug)]
pub enum Item<T> {
    Ok(T),
    Null,
    Unreadable(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if value.is_null() {
            return Ok(Item::Null);
        }
        Ok(match serde_json::from_value(value) {
            Ok(t) => Item::Ok(t),
            Err(e) => Item::Unreadable(e.to_string()),
        })
    }
}

/// Where a list sits in a GraphQL answer's `data`, to tell which errors are
/// about which of its items.
#[derive(Debug, Clone, Default)]
pub struct At<'a> {
    pub path: Vec<PathSegment>,
    pub errors: &'a [GraphqlError],
}

impl<'a> At<'a> {
    pub fn new(errors: &'a [GraphqlError], path: &[&str]) -> Self {
        Self { path: path.iter().map(|f| PathSegment::Field((*f).to_owned())).collect(), errors }
    }

    /// No answer errors (a REST list, or a GraphQL answer without errors).
    pub fn none() -> At<'static> {
        At { path: Vec::new(), errors: &[] }
    }

    /// Why the item at `index` of this list could not be read.
    fn why(&self, index: usize, item_error: Option<String>) -> String {
        let mut path = self.path.clone();
        path.push(PathSegment::Index(index));
        let mut reasons: Vec<String> =
            self.errors.iter().filter(|e| !self.path.is_empty() && e.is_under(&path)).map(|e| e.reason()).collect();
        reasons.extend(item_error);
        if reasons.is_empty() { "GitHub sent null for it".to_owned() } else { reasons.join("; ") }
    }
}

/// The items that could be read, and a [`Skipped`] for each one that could
/// not (`what` names an item by its index).
pub fn sort_items<T>(items: Vec<Item<T>>, at: &At<'_>, what: impl Fn(usize) -> String) -> (Vec<T>, Vec<Skipped>) {
    let (ok, skipped) = sort_items_indexed(items, at, what);
    (ok.into_iter().map(|(_, t)| t).collect(), skipped)
}

/// As [`sort_items`], each readable item with its index in the list.
pub fn sort_items_indexed<T>(
    items: Vec<Item<T>>,
    at: &At<'_>,
    what: impl Fn(usize) -> String,
) -> (Vec<(usize, T)>, Vec<Skipped>) {
    let mut ok = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Item::Ok(t) => ok.push((i, t)),
            Item::Null => skipped.push(Skipped { what: what(i), why: at.why(i, None) }),
            Item::Unreadable(e) => {
                skipped.push(Skipped { what: what(i), why: at.why(i, Some(format!("unreadable: {e}"))) })
            }
        }
    }
    (ok, skipped)
}

/// The items that could be read; each that could not is logged and left out.
pub fn readable<T>(items: Vec<Item<T>>, at: &At<'_>, what: impl Fn(usize) -> String) -> Vec<T> {
    let (ok, skipped) = sort_items(items, at, what);
    warn_skipped(&skipped);
    ok
}

pub fn warn_skipped(skipped: &[Skipped]) {
    for s in skipped {
        tracing::warn!(what = %s.what, why = %s.why, "left out of a GitHub read");
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The cursor of the next page, if there is one.
    pub fn next(&self) -> Option<String> {
        if self.has_next_page { self.end_cursor.clone() } else { None }
    }
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Connection<T> {
    pub nodes: Vec<Item<T>>,
    #[serde(rename = "pageInfo")]
    pub page_info: PageInfo,
    /// Asked for where a caller needs it (the pull request walk's progress).
    #[serde(rename = "totalCount", default)]
    pub total_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalCount {
    pub total_count: u64,
}

#[derive(Debug, Deserialize)]
pub struct Login {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Oid {
    pub oid: String,
}

#[derive(Debug, Deserialize)]
pub struct RefNode {
    pub name: String,
    pub target: Option<Oid>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Nodes<T> {
    pub nodes: Vec<Item<T>>,
}

// ---- repository snapshots

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefsPage {
    pub nodes: Vec<Item<RefNode>>,
    pub page_info: HasNext,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HasNext {
    pub has_next_page: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentPulls {
    pub nodes: Vec<Item<PullMarkNode>>,
    pub page_info: HasNext,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullMarkNode {
    pub number: u64,
    pub updated_at: Timestamp,
    pub reviews: Option<TotalCount>,
}

#[derive(Debug, Deserialize)]
pub struct DefaultBranchRef {
    pub name: String,
    pub target: Option<HistoryOf>,
}

/// `... on Commit { history { totalCount } }`: empty for another object.
#[derive(Debug, Deserialize)]
pub struct HistoryOf {
    #[serde(default)]
    pub history: Option<TotalCount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentsPage {
    pub total_count: u64,
    pub nodes: Vec<Item<DeploymentMarkNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentMarkNode {
    pub database_id: Option<i64>,
    pub latest_status: Option<StateOf>,
}

#[derive(Debug, Deserialize)]
pub struct StateOf {
    pub state: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoSnapshotNode {
    /// The name GitHub answered with: another than the one asked for when the
    /// repository was renamed or transferred (GitHub follows a former name).
    #[serde(default)]
    pub name_with_owner: Option<String>,
    #[serde(default)]
    pub database_id: Option<i64>,
    pub open: TotalCount,
    pub closed: TotalCount,
    pub merged: TotalCount,
    pub recent: Option<RecentPulls>,
    pub default_branch_ref: Option<DefaultBranchRef>,
    pub refs: Option<RefsPage>,
    pub deployments: Option<DeploymentsPage>,
}

impl RepoSnapshotNode {
    /// The snapshot of `repo` as asked for with `since`; `at` is where this
    /// repository's answer sits (its alias), for the errors of its items.
    pub fn into_snapshot(self, repo: RepoName, since: Option<Timestamp>, at: &At<'_>) -> RepoSnapshot {
        let sub = |field: &str| {
            let mut path = at.path.clone();
            path.push(PathSegment::Field(field.to_owned()));
            path.push(PathSegment::Field("nodes".to_owned()));
            At { path, errors: at.errors }
        };
        let (branches, branches_truncated) = match self.refs {
            Some(refs) => (
                readable(refs.nodes, &sub("refs"), |i| format!("branch #{i} of {repo}"))
                    .into_iter()
                    .filter_map(|r| Some((r.name, r.target?.oid)))
                    .collect(),
                refs.page_info.has_next_page,
            ),
            None => (Vec::new(), false),
        };
        let (newest_pr_updated_at, recent_pulls, recent_pulls_truncated) = match self.recent {
            Some(page) => {
                let marks = readable(page.nodes, &sub("recent"), |i| format!("recent pull request #{i} of {repo}"));
                let newest = marks.first().map(|m| m.updated_at);
                let listed = marks.len();
                let recent: Vec<PullMark> = marks
                    .into_iter()
                    .filter(|m| since.is_none_or(|s| m.updated_at >= s))
                    .map(|m| PullMark {
                        number: m.number,
                        updated_at: m.updated_at,
                        reviews: m.reviews.map_or(0, |r| r.total_count),
                    })
                    .collect();
                // Every listed one is recent and GitHub has more: the list was cut.
                let truncated = page.page_info.has_next_page && recent.len() == listed;
                (newest, recent, truncated)
            }
            None => (None, Vec::new(), false),
        };
        let (default_branch, default_branch_commits) = match self.default_branch_ref {
            Some(b) => (Some(b.name), b.target.and_then(|t| t.history).map(|h| h.total_count)),
            None => (None, None),
        };
        let (deployments, recent_deployments) = match self.deployments {
            Some(page) => {
                let marks = readable(page.nodes, &sub("deployments"), |i| format!("recent deployment #{i} of {repo}"))
                    .into_iter()
                    .filter_map(|d| {
                        Some(DeploymentMark {
                            id: d.database_id?,
                            latest_state: d.latest_status.map(|s| deployment_state(&s.state)),
                        })
                    })
                    .collect();
                (page.total_count, marks)
            }
            None => (0, Vec::new()),
        };
        let moved_to = self.name_with_owner.as_deref().and_then(|now| moved_to(&repo, now));
        RepoSnapshot {
            repo,
            id: self.database_id,
            moved_to,
            open: self.open.total_count,
            closed: self.closed.total_count,
            merged: self.merged.total_count,
            newest_pr_updated_at,
            recent_pulls,
            recent_pulls_truncated,
            branches,
            branches_truncated,
            default_branch,
            default_branch_commits,
            deployments,
            recent_deployments,
        }
    }
}

/// The repository's name now, when GitHub answered `asked` with another one
/// (names compare case-insensitively, as GitHub's do). A name that is not
/// `owner/name` is left out with a warning.
fn moved_to(asked: &RepoName, now: &str) -> Option<RepoName> {
    if now.eq_ignore_ascii_case(asked.as_str()) {
        return None;
    }
    match RepoName::parse(now) {
        Ok(name) => Some(name),
        Err(e) => {
            tracing::warn!(repo = %asked, error = %e, "GitHub answered with an unreadable repository name: not followed");
            None
        }
    }
}

/// A deployment state as webhooks and REST spell it (`success`), from
/// GraphQL's `DeploymentStatusState` (`SUCCESS`).
pub fn deployment_state(graphql: &str) -> String {
    graphql.to_ascii_lowercase()
}

// ---- organisations and teams

#[derive(Debug, Deserialize)]
pub struct OrgData<T> {
    pub organization: Option<T>,
}

#[derive(Debug, Deserialize)]
pub struct RepoData<T> {
    pub repository: Option<T>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct TeamsOf<T> {
    pub teams: Connection<T>,
}

#[derive(Debug, Deserialize)]
pub struct TeamCountNode {
    pub slug: String,
    pub members: TotalCount,
}

#[derive(Debug, Deserialize)]
pub struct Slug {
    pub slug: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamNode {
    pub database_id: Option<i64>,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub privacy: Option<String>,
    pub parent_team: Option<Slug>,
    pub members: Connection<Login>,
}

impl TeamNode {
    pub fn team(&self, org: &str, read_at: Timestamp) -> Team {
        Team {
            org: org.to_owned(),
            slug: self.slug.clone(),
            id: self.database_id,
            name: self.name.clone(),
            description: self.description.clone().filter(|d| !d.is_empty()),
            // GraphQL says VISIBLE/SECRET; webhooks (and so the store) say closed/secret.
            privacy: self.privacy.as_deref().map(|p| match p {
                "VISIBLE" => "closed".to_owned(),
                other => other.to_ascii_lowercase(),
            }),
            parent_slug: self.parent_team.as_ref().map(|p| p.slug.clone()),
            deleted: false,
            version: read_at,
        }
    }
}

/// The first page of an organisation's teams, with its newest repositories.
#[derive(Debug, Deserialize)]
pub struct OrgTeamsOf {
    pub teams: Connection<TeamCountNode>,
    pub repositories: Option<RepoCount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoCount {
    pub total_count: u64,
    pub nodes: Vec<Item<NameWithOwner>>,
}

#[derive(Debug, Deserialize)]
pub struct TeamOf<T> {
    pub team: Option<T>,
}

#[derive(Debug, Deserialize)]
pub struct MembersOf {
    pub members: Connection<Login>,
}

#[derive(Debug, Deserialize)]
pub struct ReposOf {
    pub repositories: Connection<NameWithOwner>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameWithOwner {
    pub name_with_owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchesOf {
    pub pushed_at: Option<Timestamp>,
    pub refs: Option<Connection<RefNode>>,
}

// ---- pull requests and reviews

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullsOf {
    pub pull_requests: Connection<PullNode>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullOf {
    pub pull_request: Option<ReviewsOf>,
}

#[derive(Debug, Deserialize)]
pub struct ReviewsOf {
    pub reviews: Connection<ReviewNode>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullNode {
    pub database_id: Option<i64>,
    pub number: u64,
    pub title: String,
    pub state: String,
    pub is_draft: bool,
    pub author: Option<Login>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    pub additions: i64,
    pub deletions: i64,
    pub changed_files: i64,
    pub commits: TotalCount,
    pub labels: Option<Nodes<Named>>,
    pub review_requests: Option<Nodes<ReviewRequestNode>>,
    pub base_ref_name: String,
    pub head_ref_name: String,
    pub head_ref_oid: String,
    pub reviews: Option<Connection<ReviewNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRequestNode {
    pub requested_reviewer: Option<Reviewer>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "__typename")]
pub enum Reviewer {
    User {
        login: String,
    },
    Team {
        slug: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewNode {
    pub database_id: Option<i64>,
    pub state: String,
    pub submitted_at: Option<Timestamp>,
    pub author: Option<Login>,
    pub commit: Option<Oid>,
}

impl ReviewNode {
    pub fn into_review(self, repo: &RepoName, pr_number: u64) -> anyhow::Result<Review> {
        Ok(Review {
            repo: repo.clone(),
            pr_number,
            id: self.database_id.with_context(|| format!("a review of {repo}#{pr_number} without databaseId"))?,
            author: self.author.map(|a| a.login),
            state: ReviewState::parse(&self.state).ok_or_else(|| anyhow!("unknown review state {:?}", self.state))?,
            submitted_at: self.submitted_at,
            commit_id: self.commit.map(|c| c.oid),
        })
    }
}

/// A pull request node read: the pull request, its first page of reviews,
/// the cursor of the next one, and the reviews that could not be read.
#[derive(Debug)]
pub struct PullParts {
    pub pr: PullRequest,
    pub reviews: Vec<Review>,
    pub more_reviews: Option<String>,
    pub skipped: Vec<Skipped>,
}

impl PullNode {
    /// The node's parts; `at` is where this pull request sits in the answer.
    pub fn into_parts(self, repo: &RepoName, at: &At<'_>) -> anyhow::Result<PullParts> {
        let state = match self.state.as_str() {
            "OPEN" => PrState::Open,
            "CLOSED" => PrState::Closed,
            "MERGED" => PrState::Merged,
            other => return Err(anyhow!("unknown pull request state {other:?}")),
        };
        let number = self.number;
        let (mut users, mut teams) = (Vec::new(), Vec::new());
        let requests = self.review_requests.map(|r| r.nodes).unwrap_or_default();
        for r in readable(requests, &At::none(), |i| format!("review request #{i} of {repo}#{number}")) {
            match r.requested_reviewer {
                Some(Reviewer::User { login }) => users.push(login),
                Some(Reviewer::Team { slug }) => teams.push(slug),
                _ => {}
            }
        }
        let labels = self.labels.map(|l| l.nodes).unwrap_or_default();
        let labels = readable(labels, &At::none(), |i| format!("label #{i} of {repo}#{number}"));
        let (reviews, next, skipped) = match self.reviews {
            Some(c) => {
                let next = c.page_info.next();
                let mut path = at.path.clone();
                path.extend(["reviews", "nodes"].map(|f| PathSegment::Field(f.to_owned())));
                let (reviews, skipped) = reviews_of(c.nodes, repo, number, &At { path, errors: at.errors });
                (reviews, next, skipped)
            }
            None => (Vec::new(), None, Vec::new()),
        };
        let pr = PullRequest {
            repo: repo.clone(),
            number,
            id: self.database_id,
            title: self.title,
            state,
            draft: self.is_draft,
            author: self.author.map(|a| a.login),
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: self.closed_at,
            merged_at: self.merged_at,
            additions: Some(self.additions),
            deletions: Some(self.deletions),
            changed_files: Some(self.changed_files),
            commits: Some(self.commits.total_count as i64),
            labels: Some(labels.into_iter().map(|n| n.name).collect()),
            requested_reviewers: Some(users),
            requested_teams: Some(teams),
            base_ref: Some(self.base_ref_name),
            head_ref: Some(self.head_ref_name),
            head_sha: Some(self.head_ref_oid),
        };
        Ok(PullParts { pr, reviews, more_reviews: next, skipped })
    }
}

/// The reviews of one page that could be read, and those that could not.
pub fn reviews_of(
    nodes: Vec<Item<ReviewNode>>,
    repo: &RepoName,
    number: u64,
    at: &At<'_>,
) -> (Vec<Review>, Vec<Skipped>) {
    let what = |i: usize| format!("review #{i} of {repo}#{number}");
    let (nodes, mut skipped) = sort_items(nodes, at, what);
    let mut reviews = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.into_iter().enumerate() {
        match node.into_review(repo, number) {
            Ok(r) => reviews.push(r),
            Err(e) => skipped.push(Skipped { what: what(i), why: format!("{e:#}") }),
        }
    }
    (reviews, skipped)
}

// ---- workflow runs' jobs (GraphQL `nodes`)

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct NodesData<T> {
    pub nodes: Vec<Item<T>>,
}

/// A `WorkflowRun` node (any other node reads as empty).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunJobsNode {
    pub database_id: Option<i64>,
    pub check_suite: Option<CheckSuiteCounts>,
}

#[derive(Debug, Deserialize)]
pub struct CheckSuiteCounts {
    pub all: TotalCount,
    pub done: TotalCount,
}

impl RunJobsNode {
    pub fn job_count(self) -> Option<JobCount> {
        let suite = self.check_suite?;
        Some(JobCount { run_id: self.database_id?, jobs: suite.all.total_count, completed: suite.done.total_count })
    }
}

// ---- commits of a branch

#[derive(Debug, Deserialize)]
pub struct RefOf {
    #[serde(rename = "ref")]
    pub git_ref: Option<TargetOf>,
}

#[derive(Debug, Deserialize)]
pub struct TargetOf {
    pub target: Option<HistoryPage>,
}

/// `... on Commit { history(..) }`: empty when the ref points elsewhere.
#[derive(Debug, Deserialize)]
pub struct HistoryPage {
    #[serde(default)]
    pub history: Option<Connection<CommitNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitNode {
    pub oid: String,
    #[serde(default)]
    pub message: String,
    pub committed_date: Option<Timestamp>,
    pub author: Option<GitActor>,
}

#[derive(Debug, Deserialize)]
pub struct GitActor {
    pub name: Option<String>,
    pub user: Option<Login>,
}

impl CommitNode {
    pub fn into_commit(self, repo: &RepoName) -> Commit {
        let (author_name, author_login) = match self.author {
            Some(a) => (a.name, a.user.map(|u| u.login)),
            None => (None, None),
        };
        Commit {
            repo: repo.clone(),
            sha: self.oid,
            message: self.message,
            author_name,
            author_login,
            committed_at: self.committed_date,
        }
    }
}

// ---- REST

/// A page of `GET /repos/{owner}/{repo}/actions/runs`: each run has the same
/// shape as the `workflow_run` webhook's, so it is read by the same type.
#[derive(Debug, Deserialize)]
pub struct WorkflowRunsPage {
    pub total_count: u64,
    pub workflow_runs: Vec<Item<RestRun>>,
}

/// A run as REST lists it: the webhook's run, and its GraphQL node id.
#[derive(Debug, Deserialize)]
pub struct RestRun {
    #[serde(flatten)]
    pub run: WorkflowRunPayload,
    pub node_id: Option<String>,
}

/// A page of `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`: each
/// job has the shape of the `workflow_job` webhook's.
#[derive(Debug, Deserialize)]
pub struct WorkflowJobsPage {
    pub jobs: Vec<Item<WorkflowJobPayload>>,
}

/// `GET /repos/{owner}/{repo}/deployments` (the `deployment` webhook's shape).
pub type DeploymentsList = Vec<Item<DeploymentPayload>>;

/// `GET .../deployments/{id}/statuses` (the `deployment_status` webhook's shape).
pub type DeploymentStatusesList = Vec<Item<DeploymentStatusPayload>>;

#[derive(Debug, Deserialize)]
pub struct RestHook {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
pub struct RestDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: Timestamp,
    pub redelivery: bool,
    pub status_code: u16,
    pub event: String,
}

impl From<RestDelivery> for HookDelivery {
    fn from(d: RestDelivery) -> Self {
        HookDelivery {
            id: d.id,
            guid: d.guid,
            delivered_at: d.delivered_at,
            status_code: d.status_code,
            event: d.event,
            redelivery: d.redelivery,
        }
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let h = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(next_link(h).as_deref(), Some("https://api.github.com/x?page=3"));
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
    }

    #[test]
    fn pull_request_nodes_map_state_size_and_requests() {
        let node: PullNode = serde_json::from_value(serde_json::json!({
            "databaseId": 7, "number": 3, "title": "t", "state": "MERGED", "isDraft": false,
            "author": {"login": "octocat"}, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T00:00:00Z",
            "closedAt": "2024-01-02T00:00:00Z", "mergedAt": "2024-01-02T00:00:00Z",
            "additions": 1, "deletions": 2, "changedFiles": 3, "commits": {"totalCount": 4},
            "labels": {"nodes": [{"name": "bug"}]},
            "reviewRequests": {"nodes": [{"requestedReviewer": {"__typename": "User", "login": "a"}},
                                         {"requestedReviewer": {"__typename": "Team", "slug": "core"}},
                                         {"requestedReviewer": {"__typename": "Mannequin"}}]},
            "baseRefName": "main", "headRefName": "f", "headRefOid": "abc",
            "reviews": {"nodes": [{"databaseId": 9, "state": "CHANGES_REQUESTED", "submittedAt": "2024-01-01T12:00:00Z",
                                   "author": {"login": "b"}, "commit": {"oid": "abc"}}],
                        "pageInfo": {"hasNextPage": true, "endCursor": "c1"}}
        }))
        .unwrap();
        let repo = RepoName::parse("o/r").unwrap();
        let PullParts { pr, reviews, more_reviews: next, skipped } = node.into_parts(&repo, &At::none()).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(pr.state, PrState::Merged);
        assert_eq!((pr.additions, pr.commits), (Some(1), Some(4)));
        assert_eq!(pr.requested_reviewers, Some(vec!["a".to_owned()]));
        assert_eq!(pr.requested_teams, Some(vec!["core".to_owned()]));
        assert_eq!(reviews[0].state, ReviewState::ChangesRequested);
        assert_eq!(next.as_deref(), Some("c1"));
    }

    const RUN: &str =
        include_str!("../../../tests/fixtures/github-webhooks/api.github.com/workflow_run/completed.payload.json");
    const JOB: &str = include_str!(
        "../../../tests/fixtures/github-webhooks/api.github.com/workflow_job/completed.success.with-organization.payload.json"
    );
    const DEPLOYMENT_STATUS: &str =
        include_str!("../../../tests/fixtures/github-webhooks/api.github.com/deployment_status/payload.json");

    fn object(payload: &str, field: &str) -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(payload).unwrap();
        v[field].take()
    }

    fn repo() -> RepoName {
        RepoName::parse("o/r").unwrap()
    }

    #[test]
    fn a_snapshot_answered_under_another_name_says_where_the_repository_moved() {
        let node = |name: serde_json::Value| -> RepoSnapshotNode {
            serde_json::from_value(serde_json::json!({
                "nameWithOwner": name, "databaseId": 42,
                "open": {"totalCount": 0}, "closed": {"totalCount": 0}, "merged": {"totalCount": 0}
            }))
            .unwrap()
        };
        // GIVEN GitHub's answers for `o/r`: under another name, the same in another case, an unreadable one, none
        let moved = node(serde_json::json!("other/r2")).into_snapshot(repo(), None, &At::none());
        let same = node(serde_json::json!("O/R")).into_snapshot(repo(), None, &At::none());
        let unreadable = node(serde_json::json!("no-slash")).into_snapshot(repo(), None, &At::none());
        let absent = node(serde_json::Value::Null).into_snapshot(repo(), None, &At::none());
        // THEN only the other name is a move; every one carries GitHub's id and the name asked for
        assert_eq!(moved.moved_to, Some(RepoName::parse("other/r2").unwrap()));
        assert_eq!((same.moved_to, unreadable.moved_to, absent.moved_to), (None, None, None));
        assert_eq!((moved.id, moved.repo), (Some(42), repo()));
    }

    fn errors(json: serde_json::Value) -> Vec<GraphqlError> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_null_pull_request_node_is_one_skipped_item_with_its_error() {
        // GIVEN a page whose second node is null, with GitHub's error at its path
        let data: RepoData<PullsOf> = serde_json::from_value(serde_json::json!({"repository": {"pullRequests": {
            "nodes": [null, {"databaseId": 1}],
            "totalCount": 2, "pageInfo": {"hasNextPage": false, "endCursor": null}}}}))
        .unwrap();
        let errs = errors(serde_json::json!([{"type": "FORBIDDEN", "message": "Resource not accessible",
            "path": ["repository", "pullRequests", "nodes", 0]}]));
        let nodes = data.repository.unwrap().pull_requests.nodes;
        // WHEN its items are sorted
        let at = At::new(&errs, &["repository", "pullRequests", "nodes"]);
        let (ok, skipped) = sort_items(nodes, &at, |i| format!("pull #{i}"));
        // THEN the null one is skipped with GitHub's reason, the malformed one with its own, and nothing fails
        assert!(ok.is_empty());
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].what, "pull #0");
        assert!(skipped[0].why.contains("FORBIDDEN: Resource not accessible"), "{skipped:?}");
        assert!(skipped[1].why.starts_with("unreadable: missing field"), "{skipped:?}");
        // AND an error about another index is not taken for this one's
        assert!(!skipped[1].why.contains("FORBIDDEN"));
    }

    #[test]
    fn a_snapshot_keeps_pulls_updated_since_the_watermark_and_says_when_the_list_was_cut() {
        let since: Timestamp = "2024-01-02T00:00:00Z".parse().unwrap();
        let node = |recent: serde_json::Value, has_next: bool| -> RepoSnapshotNode {
            serde_json::from_value(serde_json::json!({
                "open": {"totalCount": 1}, "closed": {"totalCount": 2}, "merged": {"totalCount": 3},
                "recent": {"nodes": recent, "pageInfo": {"hasNextPage": has_next}},
                "defaultBranchRef": {"name": "main", "target": {"history": {"totalCount": 7}}},
                "refs": {"nodes": [{"name": "main", "target": {"oid": "abc"}}, null], "pageInfo": {"hasNextPage": false}},
                "deployments": {"totalCount": 30, "nodes": [
                    {"databaseId": 9, "latestStatus": {"state": "SUCCESS"}},
                    {"databaseId": 8, "latestStatus": null}, null]}
            }))
            .unwrap()
        };
        // GIVEN pull requests updated on either side of the watermark, one null
        let recent = serde_json::json!([
            {"number": 5, "updatedAt": "2024-01-03T00:00:00Z", "reviews": {"totalCount": 4}},
            null,
            {"number": 4, "updatedAt": "2024-01-02T00:00:00Z", "reviews": null},
            {"number": 3, "updatedAt": "2024-01-01T00:00:00Z", "reviews": {"totalCount": 1}}]);
        // WHEN read with the watermark
        let snap = node(recent.clone(), true).into_snapshot(repo(), Some(since), &At::none());
        // THEN only those at or after it are kept, with review counts; the list is not cut (an older one was listed)
        let marks: Vec<(u64, u64)> = snap.recent_pulls.iter().map(|m| (m.number, m.reviews)).collect();
        assert_eq!(marks, vec![(5, 4), (4, 0)]);
        assert!(!snap.recent_pulls_truncated);
        assert_eq!(snap.newest_pr_updated_at, Some("2024-01-03T00:00:00Z".parse().unwrap()));
        // AND the other kinds are read: commits since, deployments in all, latest states as webhooks spell them
        assert_eq!((snap.default_branch.as_deref(), snap.default_branch_commits), (Some("main"), Some(7)));
        assert_eq!(snap.deployments, 30);
        assert_eq!(
            snap.recent_deployments,
            vec![
                DeploymentMark { id: 9, latest_state: Some("success".into()) },
                DeploymentMark { id: 8, latest_state: None }
            ]
        );
        assert_eq!(snap.branches, vec![("main".to_owned(), "abc".to_owned())]);
        // AND every one listed being recent, with more on GitHub, says the list was cut
        let all_recent =
            node(serde_json::json!([recent[0].clone()]), true).into_snapshot(repo(), Some(since), &At::none());
        assert!(all_recent.recent_pulls_truncated);
        // AND without a watermark every one listed is kept
        assert_eq!(node(recent, false).into_snapshot(repo(), None, &At::none()).recent_pulls.len(), 3);
    }

    #[test]
    fn rest_runs_are_read_with_their_node_ids_and_a_malformed_one_is_left_out() {
        // GIVEN a runs page as GitHub sends it: the webhook's run object, and one that is not a run
        let page: WorkflowRunsPage = serde_json::from_value(serde_json::json!({
            "total_count": 2, "workflow_runs": [object(RUN, "workflow_run"), {"id": "not a number"}]
        }))
        .unwrap();
        // WHEN its runs are read
        assert_eq!(page.total_count, 2);
        let runs = readable(page.workflow_runs, &At::none(), |i| format!("run #{i}"));
        // THEN the run is there with its node id, and the other left out
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].node_id.as_deref(), Some("MDExOldvcmtmbG93UnVuMjg5NzgyNDUx"));
        let run = crate::webhook::normalize::workflow_run(repo(), runs.into_iter().next().unwrap().run);
        assert_eq!((run.id, run.status), (289782451, RunStatus::Completed));
    }

    #[test]
    fn rest_jobs_map_as_the_workflow_job_webhook_does() {
        // GIVEN a jobs page holding the webhook's job object
        let page: WorkflowJobsPage =
            serde_json::from_value(serde_json::json!({"total_count": 1, "jobs": [object(JOB, "workflow_job"), null]}))
                .unwrap();
        // WHEN mapped
        let jobs: Vec<WorkflowJob> = readable(page.jobs, &At::none(), |i| format!("job #{i}"))
            .into_iter()
            .map(|j| crate::webhook::normalize::workflow_job(repo(), j))
            .collect();
        // THEN it is the domain job the webhook gives, runner labels and OS included
        let event = crate::webhook::normalize("workflow_job", JOB.as_bytes(), chrono::Utc::now()).unwrap();
        let from_webhook = event.changes.iter().find_map(|c| match c {
            Change::WorkflowJob(j) => Some(WorkflowJob { repo: repo(), ..j.clone() }),
            _ => None,
        });
        assert_eq!(jobs.len(), 1);
        assert_eq!(Some(&jobs[0]), from_webhook.as_ref());
        assert_eq!((jobs[0].labels.clone(), jobs[0].os.as_deref()), (vec!["ubuntu-latest".to_owned()], Some("linux")));
    }

    #[test]
    fn rest_deployment_statuses_map_as_the_webhook_does() {
        let list: DeploymentStatusesList =
            serde_json::from_value(serde_json::json!([object(DEPLOYMENT_STATUS, "deployment_status")])).unwrap();
        let statuses = readable(list, &At::none(), |i| format!("status #{i}"));
        let status = crate::webhook::normalize::deployment_status(repo(), 77, statuses.into_iter().next().unwrap());
        assert_eq!((status.deployment_id, status.id, status.state.as_str()), (77, 209916254, "success"));
    }

    #[test]
    fn job_count_nodes_read_runs_and_leave_out_the_rest() {
        // GIVEN a run, a null (deleted run) and a node of another type
        let data: NodesData<RunJobsNode> = serde_json::from_value(serde_json::json!({"nodes": [
            {"databaseId": 11, "checkSuite": {"all": {"totalCount": 5}, "done": {"totalCount": 3}}},
            null,
            {}
        ]}))
        .unwrap();
        // WHEN counted
        let (nodes, gone) = sort_items(data.nodes, &At::none(), |i| format!("node #{i}"));
        let counts: Vec<JobCount> = nodes.into_iter().filter_map(RunJobsNode::job_count).collect();
        // THEN only the run counts
        assert_eq!(counts, vec![JobCount { run_id: 11, jobs: 5, completed: 3 }]);
        assert_eq!(gone.len(), 1);
    }

    #[test]
    fn commit_nodes_map_author_name_and_login() {
        let node: CommitNode = serde_json::from_value(serde_json::json!({
            "oid": "abc", "message": "fix", "committedDate": "2024-01-01T00:00:00Z",
            "author": {"name": "Mona", "user": {"login": "mona"}}
        }))
        .unwrap();
        let c = node.into_commit(&repo());
        assert_eq!(
            (c.sha.as_str(), c.author_name.as_deref(), c.author_login.as_deref()),
            ("abc", Some("Mona"), Some("mona"))
        );
        assert_eq!(c.committed_at, Some("2024-01-01T00:00:00Z".parse().unwrap()));
    }
}

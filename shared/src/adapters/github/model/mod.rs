//! The shapes of GitHub's answers (only the fields the documents ask for) and
//! their mapping into domain types.

use anyhow::{Context as _, anyhow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::transport::{GraphqlError, PathSegment};
use crate::domain::*;
use crate::ports::{DeploymentMark, HookDelivery, JobCount, PullMark, RepoSnapshot, Skipped};
use crate::services::search_docs::stored_body;
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
        // Absent when not asked for: the credentials may not read deployments.
        let deployments_withheld = self.deployments.is_none();
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
            deployments_withheld,
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
    /// None when not asked for (`$teams` false).
    #[serde(default)]
    pub teams: Option<Connection<TeamCountNode>>,
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

mod pulls;
mod rest;

pub use pulls::*;
pub use rest::*;

#[cfg(test)]
mod tests;

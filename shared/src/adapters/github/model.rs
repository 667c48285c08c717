//! The shapes of GitHub's answers (only the fields the documents ask for) and
//! their mapping into domain types.

use anyhow::{Context as _, anyhow};
use serde::Deserialize;

use crate::domain::*;
use crate::ports::{HookDelivery, RepoSnapshot};

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
pub struct Connection<T> {
    pub nodes: Vec<T>,
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

// ---- repository snapshots

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedAt {
    pub updated_at: Timestamp,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefsPage {
    pub nodes: Vec<RefNode>,
    pub page_info: HasNext,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HasNext {
    pub has_next_page: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoSnapshotNode {
    pub open: TotalCount,
    pub closed: TotalCount,
    pub merged: TotalCount,
    pub newest: Nodes<UpdatedAt>,
    pub default_branch_ref: Option<Named>,
    pub refs: Option<RefsPage>,
}

#[derive(Debug, Deserialize)]
pub struct Nodes<T> {
    pub nodes: Vec<T>,
}

impl RepoSnapshotNode {
    pub fn into_snapshot(self, repo: RepoName) -> RepoSnapshot {
        let (branches, branches_truncated) = match self.refs {
            Some(refs) => (
                refs.nodes.into_iter().filter_map(|r| Some((r.name, r.target?.oid))).collect(),
                refs.page_info.has_next_page,
            ),
            None => (Vec::new(), false),
        };
        RepoSnapshot {
            repo: repo.clone(),
            open: self.open.total_count,
            closed: self.closed.total_count,
            merged: self.merged.total_count,
            newest_pr_updated_at: self.newest.nodes.first().map(|n| n.updated_at),
            branches,
            branches_truncated,
            default_branch: self.default_branch_ref.map(|b| b.name),
            ..RepoSnapshot::empty(repo)
        }
    }
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

impl PullNode {
    /// The pull request, its first page of reviews and the cursor of the next one.
    pub fn into_parts(self, repo: &RepoName) -> anyhow::Result<(PullRequest, Vec<Review>, Option<String>)> {
        let state = match self.state.as_str() {
            "OPEN" => PrState::Open,
            "CLOSED" => PrState::Closed,
            "MERGED" => PrState::Merged,
            other => return Err(anyhow!("unknown pull request state {other:?}")),
        };
        let (mut users, mut teams) = (Vec::new(), Vec::new());
        for r in self.review_requests.map(|r| r.nodes).unwrap_or_default() {
            match r.requested_reviewer {
                Some(Reviewer::User { login }) => users.push(login),
                Some(Reviewer::Team { slug }) => teams.push(slug),
                _ => {}
            }
        }
        let number = self.number;
        let (reviews, next) = match self.reviews {
            Some(c) => {
                let next = c.page_info.next();
                let reviews =
                    c.nodes.into_iter().map(|r| r.into_review(repo, number)).collect::<anyhow::Result<_>>()?;
                (reviews, next)
            }
            None => (Vec::new(), None),
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
            labels: Some(self.labels.map(|l| l.nodes.into_iter().map(|n| n.name).collect()).unwrap_or_default()),
            requested_reviewers: Some(users),
            requested_teams: Some(teams),
            base_ref: Some(self.base_ref_name),
            head_ref: Some(self.head_ref_name),
            head_sha: Some(self.head_ref_oid),
        };
        Ok((pr, reviews, next))
    }
}

// ---- REST

/// A page of `GET /repos/{owner}/{repo}/actions/runs`: each run has the same
/// shape as the `workflow_run` webhook's, so it is read by the same type.
#[derive(Debug, Deserialize)]
pub struct WorkflowRunsPage {
    pub workflow_runs: Vec<crate::webhook::payload::WorkflowRunPayload>,
}

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
        let (pr, reviews, next) = node.into_parts(&repo).unwrap();
        assert_eq!(pr.state, PrState::Merged);
        assert_eq!((pr.additions, pr.commits), (Some(1), Some(4)));
        assert_eq!(pr.requested_reviewers, Some(vec!["a".to_owned()]));
        assert_eq!(pr.requested_teams, Some(vec!["core".to_owned()]));
        assert_eq!(reviews[0].state, ReviewState::ChangesRequested);
        assert_eq!(next.as_deref(), Some("c1"));
    }
}

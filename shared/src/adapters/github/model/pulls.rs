//! Pull requests with their reviews, workflow runs' job counts and a branch's commits, as GraphQL answers them.

use super::*;

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
    pub body: Option<String>,
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
    pub body: Option<String>,
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
            body: Some(stored_body(self.body.as_deref().unwrap_or_default())),
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
            labels: labels.into_iter().map(|n| n.name).collect(),
            requested_reviewers: users,
            requested_teams: teams,
            base_ref: Some(self.base_ref_name),
            head_ref: Some(self.head_ref_name),
            head_sha: Some(self.head_ref_oid),
            body: Some(stored_body(self.body.as_deref().unwrap_or_default())),
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

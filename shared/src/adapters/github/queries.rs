//! The GraphQL documents the adapter sends. Each lives in `queries/*.graphql`;
//! the batched repository snapshot document is generated from a per-repository
//! fragment. [`all_documents`] lists every document exactly as sent, so a test
//! can validate them against GitHub's public schema.

use std::fmt::Write as _;

/// Repositories per batched snapshot request (aliases per document).
///
/// GitHub refuses a call that could return more than 500,000 nodes, counted
/// as the product of the `first`/`last` arguments down each path. Per
/// repository the document asks for (see [`SNAPSHOT_NODES_PER_REPO`]):
///
/// | path                                        | nodes            |
/// |---------------------------------------------|------------------|
/// | `recent: pullRequests(first: 100)`          | 100              |
/// | ... each with `reviews { totalCount }`      | 100 × 1 = 100    |
/// | `refs(first: 100)` with `target`            | 100 + 100 = 200  |
/// | `deployments(first: 20)` with `latestStatus`| 20 + 20 = 40     |
/// | `open`/`closed`/`merged`/`history` counts   | 4                |
/// | `defaultBranchRef` and its `target`         | 2                |
///
/// (counting every object, not only connections, and a count-only
/// connection as one node) = 446 per repository, so 100 repositories are
/// 44,600 nodes: under a tenth of the limit.
pub const SNAPSHOT_BATCH: usize = 100;

/// The node count of one repository in the snapshot document (the table above).
pub const SNAPSHOT_NODES_PER_REPO: usize = 100 + 100 + 200 + 40 + 4 + 2;

/// GitHub's limit on the nodes one GraphQL call may ask for.
pub const GITHUB_NODE_LIMIT: usize = 500_000;

const _: () = assert!(SNAPSHOT_BATCH * SNAPSHOT_NODES_PER_REPO <= GITHUB_NODE_LIMIT);

/// Node ids per `nodes(ids:)` request (GitHub takes at most 100).
pub const NODES_BATCH: usize = 100;

const REVIEW_FIELDS: &str = include_str!("queries/review_fields.graphql");
const REPO_SNAPSHOT_FRAGMENT: &str = include_str!("queries/repo_snapshot.graphql");

pub const ORG_TEAMS: &str = include_str!("queries/org_teams.graphql");
pub const TEAMS: &str = include_str!("queries/teams.graphql");
pub const TEAM_MEMBERS: &str = include_str!("queries/team_members.graphql");
pub const ORG_REPOS: &str = include_str!("queries/org_repos.graphql");
pub const BRANCHES: &str = include_str!("queries/branches.graphql");
pub const RUN_JOB_COUNTS: &str = include_str!("queries/run_job_counts.graphql");
pub const BRANCH_COMMITS: &str = include_str!("queries/branch_commits.graphql");

/// `pull_requests.graphql` with the review fragment it spreads.
pub fn pull_requests() -> String {
    format!("{}\n{REVIEW_FIELDS}", include_str!("queries/pull_requests.graphql"))
}

/// `pull_reviews.graphql` with the review fragment it spreads.
pub fn pull_reviews() -> String {
    format!("{}\n{REVIEW_FIELDS}", include_str!("queries/pull_reviews.graphql"))
}

/// The alias of the `i`-th repository in a batched snapshot document.
pub fn repo_alias(i: usize) -> String {
    format!("r{i}")
}

/// The snapshot document for `n` repositories: variables `$o{i}`/`$n{i}` are
/// the owner and name of the repository aliased `r{i}`, and `$s{i}` its
/// watermark (null for never verified): the default branch's commits are
/// counted from it; `$deployments` whether deployments are asked for.
pub fn repo_snapshots_document(n: usize) -> String {
    let mut doc = String::from("query RepoSnapshots(");
    for i in 0..n {
        if i > 0 {
            doc.push_str(", ");
        }
        let _ = write!(doc, "$o{i}: String!, $n{i}: String!, $s{i}: GitTimestamp");
    }
    doc.push_str(", $deployments: Boolean!) {\n");
    for i in 0..n {
        let _ = writeln!(
            doc,
            "  {}: repository(owner: $o{i}, name: $n{i}) {{ ...RepoSnapshot \
             defaultBranchRef {{ name target {{ ... on Commit {{ history(since: $s{i}) {{ totalCount }} }} }} }} }}",
            repo_alias(i)
        );
    }
    doc.push_str("  rateLimit { cost remaining }\n}\n");
    doc.push_str(REPO_SNAPSHOT_FRAGMENT);
    doc
}

/// Every document the adapter can send, by name, as sent (batched snapshot
/// documents for one and for a full batch of repositories).
pub fn all_documents() -> Vec<(&'static str, String)> {
    vec![
        ("RepoSnapshots(1)", repo_snapshots_document(1)),
        ("RepoSnapshots(batch)", repo_snapshots_document(SNAPSHOT_BATCH)),
        ("OrgTeams", ORG_TEAMS.to_owned()),
        ("PullRequests", pull_requests()),
        ("PullReviews", pull_reviews()),
        ("Teams", TEAMS.to_owned()),
        ("TeamMembers", TEAM_MEMBERS.to_owned()),
        ("OrgRepos", ORG_REPOS.to_owned()),
        ("Branches", BRANCHES.to_owned()),
        ("RunJobCounts", RUN_JOB_COUNTS.to_owned()),
        ("BranchCommits", BRANCH_COMMITS.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_document_aliases_every_repository_once() {
        // GIVEN three repositories WHEN the batched document is built
        let doc = repo_snapshots_document(3);
        // THEN each has its own alias and variables, and the fragment is included once
        for i in 0..3 {
            assert!(doc.contains(&format!("r{i}: repository(owner: $o{i}, name: $n{i})")), "{doc}");
            assert!(doc.contains(&format!("$s{i}: GitTimestamp")), "{doc}");
            assert!(doc.contains(&format!("history(since: $s{i})")), "{doc}");
        }
        assert!(!doc.contains("r3:"));
        assert_eq!(doc.matches("fragment RepoSnapshot on Repository").count(), 1);
    }
}

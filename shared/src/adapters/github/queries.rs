//! The GraphQL documents the adapter sends. Each lives in `queries/*.graphql`;
//! the batched repository snapshot document is generated from a per-repository
//! fragment. [`all_documents`] lists every document exactly as sent, so a test
//! can validate them against GitHub's public schema.

use std::fmt::Write as _;

/// Repositories per batched snapshot request (aliases per document). 100
/// repositories with 100 branch refs each are ~10,000 nodes, far under
/// GitHub's 500,000-node limit per call.
pub const SNAPSHOT_BATCH: usize = 100;

const REVIEW_FIELDS: &str = include_str!("queries/review_fields.graphql");
const REPO_SNAPSHOT_FRAGMENT: &str = include_str!("queries/repo_snapshot.graphql");

pub const ORG_TEAMS: &str = include_str!("queries/org_teams.graphql");
pub const TEAMS: &str = include_str!("queries/teams.graphql");
pub const TEAM_MEMBERS: &str = include_str!("queries/team_members.graphql");
pub const ORG_REPOS: &str = include_str!("queries/org_repos.graphql");
pub const BRANCHES: &str = include_str!("queries/branches.graphql");

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
/// the owner and name of the repository aliased `r{i}`.
pub fn repo_snapshots_document(n: usize) -> String {
    let mut doc = String::from("query RepoSnapshots(");
    for i in 0..n {
        if i > 0 {
            doc.push_str(", ");
        }
        let _ = write!(doc, "$o{i}: String!, $n{i}: String!");
    }
    doc.push_str(") {\n");
    for i in 0..n {
        let _ = writeln!(doc, "  {}: repository(owner: $o{i}, name: $n{i}) {{ ...RepoSnapshot }}", repo_alias(i));
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
        }
        assert!(!doc.contains("r3:"));
        assert_eq!(doc.matches("fragment RepoSnapshot on Repository").count(), 1);
    }
}

//! The GitHub adapter against the fake GitHub (`octoscope-fakehub`): what it
//! reads matches the ground truth, pages cost what the design says, and rate
//! limits, secondary limits and 5xx are survived.
#![cfg(feature = "github")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use octoscope::adapters::github::{GitHubClient, GitHubConfig, RetryPolicy};
use octoscope::config::GitHubCredentials;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope_fakehub::{self as fake, AppSpec, FakeHub, Fault, Faults, HubConfig, OrgSpec, RateLimit, WebhookSpec};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(10),
        secondary_limit_wait: Duration::from_millis(200),
        request_timeout: Duration::from_secs(30),
    }
}

async fn client_for(hub: &FakeHub, retry: RetryPolicy) -> GitHubClient {
    client_at(&hub.url, hub.token(), retry).await
}

async fn client_at(url: &str, token: &str, retry: RetryPolicy) -> GitHubClient {
    let mut config = GitHubConfig::new(url, GitHubCredentials::Token(token.to_owned()));
    config.retry = retry;
    GitHubClient::new(config).await.expect("a client")
}

fn repo_name(r: &fake::Repo) -> RepoName {
    RepoName::parse(&r.full_name()).expect("generated names are valid")
}

fn expected_state(s: fake::PullState) -> PrState {
    match s {
        fake::PullState::Open => PrState::Open,
        fake::PullState::Closed => PrState::Closed,
        fake::PullState::Merged => PrState::Merged,
    }
}

fn expected_review_state(s: fake::ReviewState) -> ReviewState {
    match s {
        fake::ReviewState::Approved => ReviewState::Approved,
        fake::ReviewState::ChangesRequested => ReviewState::ChangesRequested,
        fake::ReviewState::Commented => ReviewState::Commented,
        fake::ReviewState::Dismissed => ReviewState::Dismissed,
    }
}

/// The domain pull request and reviews the truth says the adapter must return.
fn expected_pull(repo: &RepoName, p: &fake::Pull) -> (PullRequest, Vec<Review>) {
    let pr = PullRequest {
        repo: repo.clone(),
        number: p.number,
        id: Some(p.id),
        title: p.title.clone(),
        state: expected_state(p.state),
        draft: p.draft,
        author: Some(p.author.clone()),
        created_at: p.created_at,
        updated_at: p.updated_at,
        closed_at: p.closed_at,
        merged_at: p.merged_at,
        additions: Some(p.additions),
        deletions: Some(p.deletions),
        changed_files: Some(p.changed_files),
        commits: Some(p.commits),
        labels: p.labels.clone(),
        requested_reviewers: p.requested_reviewers.clone(),
        requested_teams: p.requested_teams.clone(),
        base_ref: Some(p.base_ref.clone()),
        head_ref: Some(p.head_ref.clone()),
        head_sha: Some(p.head_sha.clone()),
        body: Some(p.body.clone()),
    };
    let reviews = p
        .reviews
        .iter()
        .map(|r| Review {
            repo: repo.clone(),
            pr_number: p.number,
            id: r.id,
            author: Some(r.author.clone()),
            state: expected_review_state(r.state),
            submitted_at: Some(r.submitted_at),
            commit_id: Some(r.commit_id.clone()),
            // The fake's reviews say nothing.
            body: Some(String::new()),
        })
        .collect();
    (pr, reviews)
}

/// Page through every pull request of `repo`; returns them and the number of pages.
async fn all_pulls(client: &GitHubClient, repo: &RepoName) -> (Vec<(PullRequest, Vec<Review>)>, usize) {
    let (mut out, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = client.pull_requests(repo, cursor.as_deref()).await.expect("a page of pull requests");
        pages += 1;
        out.extend(page.pulls);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (out, pages),
        }
    }
}

fn assert_pulls_match_truth(repo: &fake::Repo, got: &[(PullRequest, Vec<Review>)]) {
    let name = repo_name(repo);
    assert_eq!(got.len(), repo.pulls.len(), "every pull request once");
    let by_number: BTreeMap<u64, &(PullRequest, Vec<Review>)> = got.iter().map(|x| (x.0.number, x)).collect();
    assert_eq!(by_number.len(), repo.pulls.len(), "no pull request twice");
    for p in &repo.pulls {
        let (pr, reviews) = by_number[&p.number];
        let (want_pr, want_reviews) = expected_pull(&name, p);
        assert_eq!(pr, &want_pr, "pull request #{}", p.number);
        assert_eq!(reviews, &want_reviews, "reviews of #{}", p.number);
    }
    // Newest-updated first, as the resync's watermark walk needs.
    assert!(got.windows(2).all(|w| w[0].0.updated_at >= w[1].0.updated_at), "ordered by updatedAt descending");
}

/// Snapshot requests for every repository, never verified.
fn requests(repos: &[RepoName]) -> Vec<SnapshotRequest> {
    repos.iter().map(|r| SnapshotRequest::new(r.clone(), None)).collect()
}

/// The snapshot the truth says GitHub gives of `repo` asked `since` (branch heads sorted).
fn expected_snapshot(repo: &fake::Repo, since: Option<Timestamp>) -> RepoSnapshot {
    let mut pulls: Vec<&fake::Pull> = repo.pulls.iter().collect();
    pulls.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.number.cmp(&a.number)));
    let listed = &pulls[..pulls.len().min(RECENT_PULLS)];
    let recent_pulls: Vec<PullMark> = listed
        .iter()
        .filter(|p| since.is_none_or(|s| p.updated_at >= s))
        .map(|p| PullMark { number: p.number, updated_at: p.updated_at, reviews: p.reviews.len() as u64 })
        .collect();
    let mut branches: Vec<(String, String)> =
        repo.branches.iter().map(|b| (b.name.clone(), b.head_sha.clone())).collect();
    branches.sort();
    let mut deployments: Vec<&fake::Deployment> = repo.deployments.iter().collect();
    deployments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    RepoSnapshot {
        repo: repo_name(repo),
        id: Some(repo.id),
        moved_to: None,
        open: repo.count(fake::PullState::Open) as u64,
        closed: repo.count(fake::PullState::Closed) as u64,
        merged: repo.count(fake::PullState::Merged) as u64,
        newest_pr_updated_at: repo.newest_pull_update(),
        recent_pulls_truncated: pulls.len() > RECENT_PULLS && recent_pulls.len() == RECENT_PULLS,
        recent_pulls,
        branches,
        branches_truncated: false,
        default_branch: Some(repo.default_branch.clone()),
        default_branch_commits: Some(
            repo.commits.iter().filter(|c| since.is_none_or(|s| c.committed_at >= s)).count() as u64
        ),
        deployments: repo.deployments.len() as u64,
        deployments_withheld: false,
        recent_deployments: deployments
            .iter()
            .take(RECENT_DEPLOYMENTS)
            .map(|d| DeploymentMark { id: d.id, latest_state: d.latest_status().map(|s| s.state.clone()) })
            .collect(),
    }
}

fn sorted_branches(mut s: RepoSnapshot) -> RepoSnapshot {
    s.branches.sort();
    s
}

#[tokio::test]
async fn repository_and_org_snapshots_match_the_ground_truth() {
    // GIVEN a fake org of 5 repositories (120 pull requests, commits and deployments each) and 4 teams
    let spec = OrgSpec { repos: 5, pulls: 120, teams: 4, deployments: 25, commits: 30, ..OrgSpec::default() };
    let hub = FakeHub::start(spec).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let org = hub.org();
    let mut names: Vec<RepoName> = org.repos.iter().map(repo_name).collect();
    names.push(RepoName::parse("octo-org/does-not-exist").unwrap());

    // WHEN the integrity check's snapshots are read
    let snaps = client.repo_snapshots(&requests(&names)).await.unwrap();
    let orgs = client.org_snapshots(std::slice::from_ref(&org.login)).await.unwrap();

    // THEN every existing repository's counts, recent pull requests with their reviews, branch
    // heads, default-branch commits and deployments are the truth's
    assert_eq!(snaps.len(), org.repos.len(), "the missing repository is left out, the others are there");
    for (snap, repo) in snaps.into_iter().zip(&org.repos) {
        assert_eq!(sorted_branches(snap), expected_snapshot(repo, None));
    }
    // AND the teams' member counts, and the organisation's repositories, are the truth's
    let want: BTreeMap<String, u64> = org.teams.iter().map(|t| (t.slug.clone(), t.members.len() as u64)).collect();
    let got: BTreeMap<String, u64> = orgs[0].teams.iter().cloned().collect();
    assert_eq!(got, want);
    assert_eq!(orgs[0].repos_total, Some(org.repos.len() as u64));
    let mut newest_repos: Vec<&fake::Repo> = org.repos.iter().collect();
    newest_repos.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    assert_eq!(orgs[0].recent_repos, newest_repos.iter().map(|r| repo_name(r)).collect::<Vec<_>>());
    // AND one request each was enough
    assert_eq!(hub.requests("graphql RepoSnapshots"), 1);
    assert_eq!(hub.requests("graphql OrgTeams"), 1);
}

#[tokio::test]
async fn a_snapshot_since_a_watermark_lists_only_what_changed_since() {
    // GIVEN repositories and a watermark in the middle of their history
    let spec = OrgSpec { repos: 3, pulls: 150, deployments: 25, commits: 40, ..OrgSpec::default() };
    let hub = FakeHub::start(spec).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let org = hub.org();
    let since = org.repos[0].newest_pull_update().unwrap() - chrono::Duration::days(20);
    let asked: Vec<SnapshotRequest> = org
        .repos
        .iter()
        .enumerate()
        .map(|(i, r)| SnapshotRequest::new(repo_name(r), (i != 1).then_some(since)))
        .collect();
    // WHEN snapshotted, the second repository never verified
    let snaps = client.repo_snapshots(&asked).await.unwrap();
    // THEN each lists the pull requests updated since its own watermark and counts its commits since it
    for ((snap, repo), req) in snaps.into_iter().zip(&org.repos).zip(&asked) {
        let want = expected_snapshot(repo, req.since);
        if req.since.is_some() {
            assert!(want.recent_pulls.len() < RECENT_PULLS, "the test needs a watermark inside the list");
            assert!(want.default_branch_commits < Some(repo.commits.len() as u64), "and inside the history");
        }
        assert_eq!(sorted_branches(snap), want);
    }
    assert_eq!(hub.requests("graphql RepoSnapshots"), 1);
}

#[tokio::test]
async fn a_change_on_github_shows_in_the_next_snapshot_and_page() {
    // GIVEN a snapshot of a repository
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 30, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = repo_name(&hub.org().repos[0]);
    let before = client.repo_snapshots(&requests(std::slice::from_ref(&repo))).await.unwrap().remove(0);
    // WHEN an open pull request is merged on GitHub
    let merged_at = before.newest_pr_updated_at.unwrap() + chrono::Duration::hours(1);
    let number = hub.org().repos[0].pulls.iter().find(|p| p.state == fake::PullState::Open).unwrap().number;
    hub.update(|org| {
        let p = org.repos[0].pulls.iter_mut().find(|p| p.number == number).unwrap();
        p.state = fake::PullState::Merged;
        (p.closed_at, p.merged_at, p.updated_at) = (Some(merged_at), Some(merged_at), merged_at);
    });
    // THEN the next snapshot counts it as merged with the new newest update, and it leads the first page
    let after = client.repo_snapshots(&requests(std::slice::from_ref(&repo))).await.unwrap().remove(0);
    assert_eq!((after.open, after.merged), (before.open - 1, before.merged + 1));
    assert_eq!(after.newest_pr_updated_at, Some(merged_at));
    let page = client.pull_requests(&repo, None).await.unwrap();
    assert_eq!(page.pulls[0].0.number, number);
    assert_eq!(page.pulls[0].0.state, PrState::Merged);
}

#[tokio::test]
async fn a_hundred_repositories_snapshot_in_at_most_two_requests() {
    // GIVEN 100 repositories
    let hub = FakeHub::start(OrgSpec { repos: 100, pulls: 5, runs: 0, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let names: Vec<RepoName> = hub.org().repos.iter().map(repo_name).collect();
    // WHEN all are snapshotted
    let snaps = client.repo_snapshots(&requests(&names)).await.unwrap();
    // THEN all came back, correct, for at most 2 requests
    assert_eq!(snaps.len(), 100);
    for (s, r) in snaps.iter().zip(&hub.org().repos) {
        assert_eq!(s.repo, repo_name(r));
        assert_eq!(s.open + s.closed + s.merged, r.pulls.len() as u64);
        assert_eq!(s.merged, r.count(fake::PullState::Merged) as u64);
    }
    let requests = hub.total_requests();
    println!("100 repository snapshots cost {requests} requests");
    assert!(requests <= 2, "{requests} requests");
    assert_eq!(client.budget().requests, requests);
}

#[tokio::test]
async fn paging_all_pull_requests_returns_each_with_all_its_reviews() {
    // GIVEN a repository whose first two pull requests have 150 reviews each
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 250, pulls_with_many_reviews: 2, ..OrgSpec::default() })
        .await
        .unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    // WHEN every page is read
    let (pulls, pages) = all_pulls(&client, &repo_name(repo)).await;
    // THEN every pull request and review is the truth's, and only those two needed extra review pages
    assert_eq!(pages, 3);
    assert_pulls_match_truth(repo, &pulls);
    assert_eq!(hub.requests("graphql PullRequests"), 3);
    assert_eq!(hub.requests("graphql PullReviews"), 2);
}

#[tokio::test]
async fn ten_thousand_pull_requests_page_fully_in_at_most_102_requests() {
    // GIVEN one repository with 10,000 pull requests (one with 150 reviews)
    let spec =
        OrgSpec { repos: 1, pulls: 10_000, pulls_with_many_reviews: 1, branches: 1, runs: 0, ..OrgSpec::default() };
    let hub = FakeHub::start(spec).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    // WHEN all are paged, reviews included
    let started = std::time::Instant::now();
    let (pulls, pages) = all_pulls(&client, &repo_name(repo)).await;
    // THEN all arrived and the cost stayed within 102 requests
    let requests = client.budget().requests;
    println!("10,000 pull requests: {pages} pages, {requests} requests, {:?}", started.elapsed());
    assert_eq!(requests, hub.total_requests(), "the adapter counts what the server saw");
    assert!(requests <= 102, "{requests} requests");
    assert_pulls_match_truth(repo, &pulls);
    let reviews: usize = pulls.iter().map(|(_, r)| r.len()).sum();
    assert_eq!(reviews, repo.pulls.iter().map(|p| p.reviews.len()).sum::<usize>());
}

#[tokio::test]
async fn teams_repositories_and_branches_are_read_whole() {
    // GIVEN an org with 120 repositories (more than a page) and teams
    let hub = FakeHub::start(OrgSpec { repos: 120, pulls: 0, runs: 0, teams: 5, branches: 2, ..OrgSpec::default() })
        .await
        .unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let org = hub.org();
    // WHEN the full reads run
    let repos = client.org_repos(&org.login).await.unwrap();
    let teams = client.teams(&org.login).await.unwrap();
    let branches = client.branches(&repo_name(&org.repos[3])).await.unwrap();
    // THEN they hold everything the truth holds
    let want: BTreeSet<String> = org.repos.iter().map(|r| r.full_name()).collect();
    assert_eq!(repos.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>(), want);
    assert_eq!(hub.requests("graphql OrgRepos"), 2);
    assert_eq!(teams.len(), org.teams.len());
    for roster in &teams {
        let truth = org.team(&roster.team.slug).expect("a true team");
        assert_eq!(roster.members, truth.members);
        assert_eq!(roster.team.id, Some(truth.id));
        assert_eq!(roster.team.privacy.as_deref(), Some(truth.privacy.as_str()));
    }
    let got: BTreeSet<(String, Option<String>)> =
        branches.iter().map(|b| (b.name.clone(), b.head_sha.clone())).collect();
    let want: BTreeSet<(String, Option<String>)> =
        org.repos[3].branches.iter().map(|b| (b.name.clone(), Some(b.head_sha.clone()))).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn workflow_runs_since_a_date_are_paged_over_rest() {
    // GIVEN a repository with 250 workflow runs
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 250, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let since = hub.org().repos[0].runs.iter().map(|r| r.created_at).min().unwrap() + chrono::Duration::days(30);
    // WHEN the runs created since a date are read
    let runs = client.workflow_runs(&repo_name(repo), Some(since)).await.unwrap();
    // THEN exactly those came, with their fields
    let want: BTreeMap<i64, &fake::WorkflowRun> =
        repo.runs.iter().filter(|r| r.created_at >= since).map(|r| (r.id, r)).collect();
    assert!(want.len() > 100, "the test needs more than one page");
    assert_eq!(runs.len(), want.len());
    for ListedRun { run, .. } in &runs {
        let truth = want[&run.id];
        assert_eq!(run.status.as_str(), truth.status);
        assert_eq!(run.conclusion, truth.conclusion);
        assert_eq!((run.created_at, run.updated_at), (truth.created_at, truth.updated_at));
        assert_eq!(run.head_sha.as_deref(), Some(truth.head_sha.as_str()));
    }
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/actions/runs") as usize, want.len().div_ceil(100));
}

#[tokio::test]
async fn an_exhausted_rate_limit_is_waited_out() {
    // GIVEN a budget of 3 GraphQL requests per 2 seconds
    let config = HubConfig { rate_limit: RateLimit::new(3, Duration::from_secs(2)), ..HubConfig::default() };
    let hub = FakeHub::start_with(OrgSpec { repos: 1, pulls: 700, ..OrgSpec::default() }, config).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    // WHEN 7 pages are read
    let (pulls, pages) = all_pulls(&client, &repo_name(repo)).await;
    // THEN all arrived, after waiting for the budget's reset (never more than 3 per window were served)
    assert_eq!(pages, 7);
    assert_pulls_match_truth(repo, &pulls);
    let budget = client.budget();
    assert_eq!(budget.limit, Some(3));
    assert!(budget.reset_at.is_some());
    assert!(budget.requests >= 7, "{budget:?}");
}

#[tokio::test]
async fn a_budget_found_spent_is_waited_for_on_graphql_and_rest() {
    budget_found_spent_is_waited_for(200).await;
    budget_found_spent_is_waited_for(403).await;
}

async fn budget_found_spent_is_waited_for(graphql_refusal_status: u16) {
    // GIVEN budgets that reset every 2 seconds
    let config = HubConfig {
        rate_limit: RateLimit { graphql_refusal_status, ..RateLimit::new(100, Duration::from_secs(2)) },
        ..HubConfig::default()
    };
    let hub =
        FakeHub::start_with(OrgSpec { repos: 1, pulls: 10, runs: 5, ..OrgSpec::default() }, config).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = repo_name(&hub.org().repos[0]);
    // WHEN a GraphQL and a REST call are made, each right after its budget was spent
    hub.exhaust_rate_limit("graphql");
    let page = client.pull_requests(&repo, None).await.unwrap();
    hub.exhaust_rate_limit("core");
    let runs = client.workflow_runs(&repo, Some(Utc::now() - chrono::Duration::days(3650))).await.unwrap();
    // THEN each was refused once (GraphQL: 200 RATE_LIMITED or 403; REST: 403), waited for the reset, and succeeded
    assert_eq!(page.pulls.len(), 10);
    assert_eq!(runs.len(), 5);
    assert_eq!(hub.requests("POST /graphql"), 2);
    assert_eq!(hub.requests("graphql PullRequests"), 1, "refused requests reach no operation");
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/actions/runs"), 2);
    assert_eq!(client.budget().requests, 4);
}

#[tokio::test]
async fn a_rate_limit_reset_too_far_away_is_reported_not_waited() {
    // GIVEN a spent budget that resets in an hour
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 10, ..OrgSpec::default() }).await.unwrap();
    hub.exhaust_rate_limit("graphql");
    let client = client_for(&hub, fast_retries()).await;
    // WHEN a page is asked for
    let started = std::time::Instant::now();
    let err = client.pull_requests(&repo_name(&hub.org().repos[0]), None).await.unwrap_err();
    // THEN the caller hears when to come back, at once
    let GitHubError::RateLimited { retry_at } = &err else { panic!("expected RateLimited, got {err:?}") };
    assert!(*retry_at > Utc::now() + chrono::Duration::minutes(50));
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn server_errors_and_secondary_limits_are_retried() {
    // GIVEN the next four requests fail: two 5xx and two secondary limits (403 and 429)
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 50, ..OrgSpec::default() }).await.unwrap();
    hub.fail_next([
        Fault::ServerError(502),
        Fault::SecondaryLimit { status: 403, retry_after_secs: Some(1) },
        Fault::ServerError(503),
        Fault::SecondaryLimit { status: 429, retry_after_secs: Some(1) },
    ]);
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[1];
    // WHEN a page is read
    let (pulls, _) = all_pulls(&client, &repo_name(repo)).await;
    // THEN it arrived whole, after four retries, each counted
    assert_pulls_match_truth(repo, &pulls);
    assert_eq!(client.budget().requests, 5);
    assert_eq!(hub.total_requests(), 5);
}

#[tokio::test]
async fn a_secondary_limit_without_retry_after_waits_the_configured_pause() {
    // GIVEN a secondary limit (403, no Retry-After) on the next request, and a 600 ms pause configured
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    hub.fail_next([Fault::SecondaryLimit { status: 403, retry_after_secs: None }]);
    let policy = RetryPolicy { secondary_limit_wait: Duration::from_millis(600), ..fast_retries() };
    let client = client_for(&hub, policy).await;
    // WHEN the repositories are read
    let started = std::time::Instant::now();
    let repos = client.org_repos(&hub.org().login).await.unwrap();
    // THEN the second attempt succeeded after that pause (not a backoff of milliseconds)
    assert_eq!(repos.len(), 1);
    assert_eq!(client.budget().requests, 2);
    assert!(started.elapsed() >= Duration::from_millis(550), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_retry_after_of_any_size_is_a_rate_limit_not_a_panic() {
    // GIVEN a secondary limit whose Retry-After is past what a date can hold (the github fuzz target's find)
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    hub.fail_next([Fault::SecondaryLimit { status: 403, retry_after_secs: Some(u64::MAX) }]);
    let client = client_for(&hub, fast_retries()).await;
    // WHEN the repositories are read
    let started = std::time::Instant::now();
    let err = client.org_repos(&hub.org().login).await.unwrap_err();
    // THEN the wait is too long to wait: a retryable rate limit, at once, to retry within a day
    let GitHubError::RateLimited { retry_at } = &err else { panic!("expected RateLimited, got {err:?}") };
    assert!(*retry_at <= Utc::now() + chrono::Duration::days(1), "{retry_at}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_request_that_outlasts_the_timeout_is_retried() {
    // GIVEN the next request stalls for 3 seconds and the client waits 300 ms
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    hub.fail_next([Fault::Stall(Duration::from_secs(3))]);
    let client = client_for(&hub, RetryPolicy { request_timeout: Duration::from_millis(300), ..fast_retries() }).await;
    // WHEN the repositories are read
    let started = std::time::Instant::now();
    let repos = client.org_repos(&hub.org().login).await.unwrap();
    // THEN the second attempt answered, long before the stall ended
    assert_eq!(repos.len(), 1);
    assert_eq!(client.budget().requests, 2);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

async fn most_in_flight(max_concurrency: usize) -> u64 {
    let config = HubConfig { latency: Duration::from_millis(100), ..HubConfig::default() };
    let hub = FakeHub::start_with(OrgSpec { repos: 1, pulls: 1, ..OrgSpec::default() }, config).await.unwrap();
    let mut config = GitHubConfig::new(&hub.url, GitHubCredentials::Token(hub.token().to_owned()));
    config.max_concurrency = max_concurrency;
    let client = Arc::new(GitHubClient::new(config).await.unwrap());
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, org) = (client.clone(), hub.org().login.clone());
        calls.spawn(async move { client.org_repos(&org).await });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap().unwrap();
    }
    hub.max_in_flight()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_capped_by_max_concurrency() {
    // GIVEN 8 calls at once against a slow server WHEN the cap is 2 THEN at most 2 are ever in flight
    assert_eq!(most_in_flight(2).await, 2);
    // AND without a tight cap more are (so the measure is real)
    assert!(most_in_flight(8).await > 2);
}

#[tokio::test]
async fn a_share_of_random_faults_does_not_change_what_is_read() {
    // GIVEN 15% of requests fail with 5xx and 5% with secondary limits
    let config = HubConfig {
        faults: Faults { server_error_share: 0.15, secondary_limit_share: 0.05, seed: 3 },
        ..HubConfig::default()
    };
    let hub = FakeHub::start_with(OrgSpec { repos: 1, pulls: 2000, ..OrgSpec::default() }, config).await.unwrap();
    let mut policy = fast_retries();
    policy.max_attempts = 8;
    let client = client_for(&hub, policy).await;
    let repo = &hub.org().repos[0];
    // WHEN every pull request is paged
    let (pulls, pages) = all_pulls(&client, &repo_name(repo)).await;
    // THEN the result is the truth, and the faults cost extra requests
    assert_eq!(pages, 20);
    assert_pulls_match_truth(repo, &pulls);
    assert!(client.budget().requests > 20, "some faults must have happened: {:?}", client.budget());
}

#[tokio::test]
async fn lasting_server_errors_give_up_as_unavailable_after_the_attempts() {
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    hub.fail_next([Fault::ServerError(500); 10]);
    let mut policy = fast_retries();
    policy.max_attempts = 3;
    let client = client_for(&hub, policy).await;
    let err = client.pull_requests(&repo_name(&hub.org().repos[0]), None).await.unwrap_err();
    assert!(matches!(err, GitHubError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(hub.total_requests(), 3);
}

#[tokio::test]
async fn bad_credentials_and_unknown_repositories_are_not_retried() {
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    let wrong = client_at(&hub.url, "ghp_wrong", fast_retries()).await;
    let err = wrong.org_repos("octo-org").await.unwrap_err();
    assert!(matches!(err, GitHubError::Forbidden(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!format!("{err:?}").contains("ghp_wrong"), "the token must not leak into errors");

    let client = client_for(&hub, fast_retries()).await;
    let err = client.pull_requests(&RepoName::parse("octo-org/nope").unwrap(), None).await.unwrap_err();
    assert!(matches!(err, GitHubError::NotFound(_)), "{err:?}");
    assert_eq!(hub.total_requests(), 2);
}

#[tokio::test]
async fn an_enterprise_server_base_url_reaches_rest_under_api_v3_and_graphql_under_api() {
    // GIVEN the fake addressed like GitHub Enterprise Server
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, runs: 3, ..OrgSpec::default() }).await.unwrap();
    let client = client_at(&format!("{}/api/v3", hub.url), hub.token(), fast_retries()).await;
    let repo = repo_name(&hub.org().repos[0]);
    // WHEN a GraphQL and a REST call are made
    client.repo_snapshots(&requests(std::slice::from_ref(&repo))).await.unwrap();
    client.workflow_runs(&repo, Some(Utc::now() - chrono::Duration::days(3650))).await.unwrap();
    // THEN they went to /api/graphql and /api/v3/...
    assert_eq!(hub.requests("POST /api/graphql"), 1, "{:?}", hub.request_counts());
    assert_eq!(hub.requests("GET /api/v3/repos/{owner}/{repo}/actions/runs"), 1, "{:?}", hub.request_counts());
}

async fn app_client(hub: &FakeHub, installation_id: Option<u64>) -> GitHubClient {
    let auth = GitHubCredentials::App {
        app_id: hub.app().app_id,
        private_key_pem: fake::TEST_APP_PRIVATE_KEY.to_owned(),
        installation_id,
    };
    let mut config = GitHubConfig::new(&hub.url, auth);
    config.retry = fast_retries();
    GitHubClient::new(config).await.expect("an app client")
}

#[tokio::test]
async fn a_github_app_finds_its_installation_and_reuses_one_token() {
    // GIVEN a GitHub App installed on the fake org, and no installation id configured
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 20, ..OrgSpec::default() }).await.unwrap();
    let client = app_client(&hub, None).await;
    // WHEN several calls are made
    let repos = client.org_repos(&hub.org().login).await.unwrap();
    client.repo_snapshots(&requests(&repos)).await.unwrap();
    client.hooks(&HookTarget::Org(hub.org().login.clone())).await.unwrap();
    // THEN the installation was looked up with the app's JWT, and one installation token served every call
    assert_eq!(repos.len(), 2);
    assert_eq!(hub.requests("GET /app/installations"), 1);
    assert_eq!(hub.installation_tokens_minted(), 1);
    assert_eq!(client.budget().requests, 3);
    // AND the token asked for the reads' permissions only: contents read, though the app may write them
    let minted = hub.tokens_minted();
    let asked: Vec<(&str, &str)> = minted[0].permissions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        asked,
        [
            ("actions", "read"),
            ("checks", "read"),
            ("contents", "read"),
            ("deployments", "read"),
            ("members", "read"),
            ("metadata", "read"),
            ("organization_hooks", "write"),
            ("pull_requests", "read"),
            ("repository_hooks", "write"),
        ]
    );
    assert_eq!(hub.app().permissions["contents"], "write");
}

#[tokio::test]
async fn an_app_without_some_of_the_reads_permissions_still_gets_a_token_for_the_rest() {
    // GIVEN an app granted neither checks nor deployments, and hooks read only
    let mut app = AppSpec::default();
    app.permissions.remove("checks");
    app.permissions.remove("deployments");
    app.permissions.insert("organization_hooks".into(), "read".into());
    let hub = FakeHub::start_with(
        OrgSpec { repos: 1, pulls: 3, ..OrgSpec::default() },
        HubConfig { app, ..HubConfig::default() },
    )
    .await
    .unwrap();
    let client = app_client(&hub, Some(hub.app().installation_id)).await;
    // WHEN it reads
    let repos = client.org_repos(&hub.org().login).await.unwrap();
    client.hooks(&HookTarget::Org(hub.org().login.clone())).await.unwrap();
    // THEN its token asked for neither, and for hooks at the level granted (no 422 for asking too much)
    assert_eq!(repos.len(), 1);
    let minted = hub.tokens_minted();
    assert_eq!(minted.len(), 1);
    let p = &minted[0].permissions;
    assert!(!p.contains_key("checks") && !p.contains_key("deployments"), "{p:?}");
    assert_eq!(p["organization_hooks"], "read");
    // AND a deployment listing, which its token does not cover, is GitHub's 403
    let repo = &repos[0];
    let err = client.deployments(repo, None).await.unwrap_err();
    assert!(matches!(err, GitHubError::Forbidden(_)), "{err:?}");
}

#[tokio::test]
async fn an_installation_token_close_to_expiry_is_replaced_before_use() {
    // GIVEN installation tokens that live 2 minutes (less than the adapter's 5-minute margin)
    let config = HubConfig {
        app: AppSpec { token_ttl: Duration::from_secs(120), ..AppSpec::default() },
        ..HubConfig::default()
    };
    let hub = FakeHub::start_with(OrgSpec { repos: 1, pulls: 5, ..OrgSpec::default() }, config).await.unwrap();
    let client = app_client(&hub, Some(hub.app().installation_id)).await;
    // WHEN three calls are made
    for _ in 0..3 {
        client.org_repos(&hub.org().login).await.unwrap();
    }
    // THEN each got a fresh token, and none was refused
    assert_eq!(hub.installation_tokens_minted(), 3);
    assert_eq!(hub.requests("GET /app/installations"), 0, "the configured installation id is used");
}

#[tokio::test]
async fn an_app_key_the_fake_does_not_know_is_refused() {
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 1, ..OrgSpec::default() }).await.unwrap();
    let auth = GitHubCredentials::App {
        app_id: hub.app().app_id + 1,
        private_key_pem: fake::TEST_APP_PRIVATE_KEY.to_owned(),
        installation_id: None,
    };
    let err = GitHubClient::new(GitHubConfig::new(&hub.url, auth)).await.unwrap_err();
    assert!(matches!(err, GitHubError::Forbidden(_)), "{err:?}");
    let garbage = GitHubCredentials::App { app_id: 1, private_key_pem: "not a key".into(), installation_id: Some(1) };
    assert!(matches!(GitHubClient::new(GitHubConfig::new(&hub.url, garbage)).await, Err(GitHubError::Forbidden(_))));
}

/// A webhook receiver that verifies signatures and records deliveries.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String, usize)>>>);

async fn receiver(secret: &str) -> (String, Received) {
    let received = Received::default();
    let secrets = octoscope::webhook::verify::WebhookSecrets::parse(secret).unwrap();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (log, secrets) = (log.clone(), secrets.clone());
            async move {
                let sig = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
                if secrets.verify(sig, &body).is_err() {
                    return StatusCode::UNAUTHORIZED;
                }
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                log.0.lock().unwrap().push((h("x-github-delivery"), h("x-github-event"), body.len()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn dropped_deliveries_are_found_and_redelivery_really_sends_them() {
    // GIVEN the org's history sent with 20% dropped and 10% duplicated
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 30, teams: 2, runs: 5, ..OrgSpec::default() }).await.unwrap();
    let spec = WebhookSpec { drop_share: 0.2, duplicate_share: 0.1, reorder_share: 0.1, ..WebhookSpec::default() };
    let (url, received) = receiver(&spec.secret).await;
    let since = Utc::now() - chrono::Duration::seconds(5);
    let report = hub.send_webhooks(&url, &spec).await.unwrap();
    assert!(!report.dropped.is_empty() && !report.duplicated.is_empty() && report.reordered > 0, "{report:?}");
    assert_eq!(report.statuses.get(&200).copied().unwrap_or_default(), report.sent, "every signature verified");
    let got_first: BTreeSet<String> = received.0.lock().unwrap().iter().map(|(g, _, _)| g.clone()).collect();
    let dropped: BTreeSet<String> = report.dropped.iter().map(|(_, g)| g.clone()).collect();
    assert!(got_first.is_disjoint(&dropped));

    // WHEN the adapter finds the org hook's failed deliveries and asks for each again
    let client = client_for(&hub, fast_retries()).await;
    let hooks = client.hooks(&HookTarget::Org(hub.org().login.clone())).await.unwrap();
    assert_eq!(hooks, vec![HookRef::Org { org: hub.org().login.clone(), id: hub.hook_id() }]);
    let failed = client.failed_deliveries(&hooks[0], since).await.unwrap();
    assert_eq!(failed.iter().map(|d| d.guid.clone()).collect::<BTreeSet<_>>(), dropped);
    assert!(hub.requests("GET /orgs/{org}/hooks/{hook}/deliveries") >= 2, "more than 100 deliveries: cursor pages");
    for d in &failed {
        client.redeliver(&hooks[0], d.id).await.unwrap();
    }

    // THEN the receiver now has every event of the history
    let got: BTreeSet<String> = received.0.lock().unwrap().iter().map(|(g, _, _)| g.clone()).collect();
    assert!(dropped.is_subset(&got));
    assert_eq!(got.len(), report.events);
    // AND the redeliveries are recorded as such, successful
    let redelivered = hub.deliveries().into_iter().filter(|d| d.redelivery).collect::<Vec<_>>();
    assert_eq!(redelivered.len(), dropped.len());
    assert!(redelivered.iter().all(|d| d.status_code == 200));
    // AND a time after everything finds nothing older
    assert!(client.failed_deliveries(&hooks[0], Utc::now() + chrono::Duration::seconds(1)).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_event_of_the_history_normalises_with_the_product_parser() {
    // GIVEN the history of an org, the oversized event included
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 40, teams: 3, runs: 10, ..OrgSpec::default() }).await.unwrap();
    let events = hub.history(true);
    let kinds: BTreeSet<(&str, Option<String>)> = events.iter().map(|e| (e.name, e.action.clone())).collect();
    for want in [
        ("pull_request", Some("opened")),
        ("pull_request", Some("closed")),
        ("pull_request", Some("edited")),
        ("pull_request_review", Some("submitted")),
        ("membership", Some("added")),
        ("membership", Some("removed")),
        ("push", None),
        ("workflow_run", Some("completed")),
    ] {
        assert!(kinds.contains(&(want.0, want.1.map(str::to_owned))), "no {want:?} event");
    }
    // WHEN each payload goes through the product's normaliser THEN none fails and each yields changes
    for e in &events {
        let body = serde_json::to_vec(&e.payload).unwrap();
        let normalized = octoscope::webhook::normalize::normalize(e.name, &body, Utc::now())
            .unwrap_or_else(|err| panic!("{} {:?} did not normalise: {err}", e.name, e.action));
        assert!(normalized.tracked && !normalized.changes.is_empty(), "{} {:?} gave no change", e.name, e.action);
    }
    assert!(serde_json::to_vec(&events.last().unwrap().payload).unwrap().len() > 7 * 1024 * 1024);
}

#[tokio::test]
async fn the_rename_and_transfer_events_of_the_history_normalise_with_the_product_parser() {
    // GIVEN a history with a repository renamed and then transferred to another account
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 5, runs: 2, ..OrgSpec::default() }).await.unwrap();
    hub.rename_repo("octo-org/repo-0", "renamed").unwrap();
    hub.transfer_repo("octo-org/renamed", "someone-else").unwrap();
    let moves: Vec<fake::Event> = hub.history(false).into_iter().filter(|e| e.name == "repository").collect();
    assert_eq!(moves.len(), 2);
    // WHEN each goes through the product's normaliser THEN it reads as the repository it now names
    for e in &moves {
        let body = serde_json::to_vec(&e.payload).unwrap();
        let normalized = octoscope::webhook::normalize::normalize(e.name, &body, Utc::now())
            .unwrap_or_else(|err| panic!("{} {:?} did not normalise: {err}", e.name, e.action));
        let named: Vec<String> = normalized
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Repository(r) => Some(r.full_name.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(named, vec![e.payload["repository"]["full_name"].as_str().unwrap().to_owned()], "{:?}", e.action);
    }
}

/// Last-writer-wins as the store applies it: newer `updated_at` (then state
/// rank) wins; a field the newer write lacks (None, or a list it does not
/// know) keeps the older value.
fn merge_pull(old: Option<(PullRequest, ListsKnown)>, new: (PullRequest, ListsKnown)) -> (PullRequest, ListsKnown) {
    let Some(old) = old else { return new };
    let ((newer, nk), (older, ok)) = if (new.0.updated_at, new.0.state.rank()) >= (old.0.updated_at, old.0.state.rank())
    {
        (new, old)
    } else {
        (old, new)
    };
    let list = |known: bool, newer: Vec<String>, older: Vec<String>| if known { newer } else { older };
    let known = ListsKnown {
        labels: nk.labels || ok.labels,
        requested_reviewers: nk.requested_reviewers || ok.requested_reviewers,
        requested_teams: nk.requested_teams || ok.requested_teams,
    };
    let pull = PullRequest {
        additions: newer.additions.or(older.additions),
        deletions: newer.deletions.or(older.deletions),
        changed_files: newer.changed_files.or(older.changed_files),
        commits: newer.commits.or(older.commits),
        labels: list(nk.labels, newer.labels.clone(), older.labels),
        requested_reviewers: list(nk.requested_reviewers, newer.requested_reviewers.clone(), older.requested_reviewers),
        requested_teams: list(nk.requested_teams, newer.requested_teams.clone(), older.requested_teams),
        body: newer.body.clone().or(older.body),
        ..newer
    };
    (pull, known)
}

#[tokio::test]
async fn the_history_replayed_last_writer_wins_gives_the_ground_truth() {
    // GIVEN the whole history of an org, normalised by the product's parser
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 60, ..OrgSpec::default() }).await.unwrap();
    let mut pulls: BTreeMap<(String, u64), PullRequest> = BTreeMap::new();
    let mut lists: BTreeMap<(String, u64), ListsKnown> = BTreeMap::new();
    let mut reviews: BTreeMap<i64, Review> = BTreeMap::new();
    // WHEN its changes are applied in a shuffled order, last writer wins
    let mut changes: Vec<Change> = hub
        .history(false)
        .iter()
        .flat_map(|e| {
            octoscope::webhook::normalize(e.name, &serde_json::to_vec(&e.payload).unwrap(), Utc::now()).unwrap().changes
        })
        .collect();
    fastrand::Rng::with_seed(11).shuffle(&mut changes);
    for change in changes {
        match change {
            Change::PullRequest { pull: p, known } => {
                let key = (p.repo.to_string(), p.number);
                let old = pulls.remove(&key).zip(lists.remove(&key));
                let (merged, known) = merge_pull(old, (*p, known));
                pulls.insert(key.clone(), merged);
                lists.insert(key, known);
            }
            Change::Review(r) => {
                let newer = reviews
                    .get(&r.id)
                    .is_none_or(|old| (r.submitted_at, r.state.rank()) >= (old.submitted_at, old.state.rank()));
                if newer {
                    reviews.insert(r.id, r);
                }
            }
            _ => {}
        }
    }
    // THEN every pull request and review is exactly the truth
    for repo in &hub.org().repos {
        let name = repo_name(repo);
        for p in &repo.pulls {
            let (want_pr, want_reviews) = expected_pull(&name, p);
            assert_eq!(pulls[&(name.to_string(), p.number)], want_pr, "#{}", p.number);
            for want in want_reviews {
                assert_eq!(reviews[&want.id], want);
            }
        }
    }
}

// ---- every kind: runs, jobs, deployments, commits

const RUNS_ENDPOINT: &str = "GET /repos/{owner}/{repo}/actions/runs";

fn assert_run_is_truth(run: &WorkflowRun, truth: &fake::WorkflowRun) {
    assert_eq!(run.id, truth.id);
    assert_eq!(run.status.as_str(), truth.status, "run {}", run.id);
    assert_eq!(run.conclusion, truth.conclusion, "run {}", run.id);
    assert_eq!((run.created_at, run.updated_at), (truth.created_at, truth.updated_at), "run {}", run.id);
    assert_eq!(run.head_sha.as_deref(), Some(truth.head_sha.as_str()));
}

#[tokio::test]
async fn a_run_window_is_one_request_with_the_total_and_the_newest_page() {
    // GIVEN a repository with 250 workflow runs
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 250, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let mut created: Vec<Timestamp> = repo.runs.iter().map(|r| r.created_at).collect();
    created.sort();
    let since = created[100];
    // WHEN the window since a time, and the whole history, are asked for
    let window = client.run_window(&repo_name(repo), Some(since)).await.unwrap();
    let whole = client.run_window(&repo_name(repo), None).await.unwrap();
    // THEN each says GitHub's total and lists the newest 100, with their node ids, for one request each
    assert_eq!(window.total, repo.runs.iter().filter(|r| r.created_at >= since).count() as u64);
    assert_eq!(whole.total, 250);
    let mut newest: Vec<&fake::WorkflowRun> = repo.runs.iter().collect();
    newest.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    assert_eq!(window.runs.len(), 100);
    for (listed, truth) in window.runs.iter().zip(&newest) {
        assert_run_is_truth(&listed.run, truth);
        assert_eq!(listed.node_id.as_deref(), Some(truth.node_id.as_str()));
    }
    assert_eq!(hub.requests(RUNS_ENDPOINT), 2);
    assert_eq!(client.budget().requests, 2);
}

#[tokio::test]
async fn ten_thousand_runs_are_walked_whole_within_the_budget() {
    // GIVEN one repository with 10,000 workflow runs (GitHub lists at most 1,000 of a filtered list)
    let spec = OrgSpec { repos: 1, pulls: 0, branches: 1, runs: 10_000, deployments: 0, ..OrgSpec::default() };
    let hub = FakeHub::start(spec).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    // WHEN every run is read, and then those since the middle of the history
    let all = client.workflow_runs(&repo_name(repo), None).await.unwrap();
    let spent = client.budget().requests;
    let mut created: Vec<Timestamp> = repo.runs.iter().map(|r| r.created_at).collect();
    created.sort();
    let since = created[created.len() / 2];
    let half = client.workflow_runs(&repo_name(repo), Some(since)).await.unwrap();
    let spent_half = client.budget().requests - spent;
    // THEN each run came exactly once, as the truth has it, newest first
    let n = repo.runs.len();
    let ids: BTreeSet<i64> = all.iter().map(|r| r.run.id).collect();
    assert_eq!((all.len(), ids.len()), (n, n), "every run once");
    let truth: BTreeMap<i64, &fake::WorkflowRun> = repo.runs.iter().map(|r| (r.id, r)).collect();
    for listed in &all {
        assert_run_is_truth(&listed.run, truth[&listed.run.id]);
        assert_eq!(listed.node_id.as_deref(), Some(truth[&listed.run.id].node_id.as_str()));
    }
    assert!(all.windows(2).all(|w| w[0].run.created_at >= w[1].run.created_at), "newest first");
    let want_half = repo.runs.iter().filter(|r| r.created_at >= since).count();
    assert_eq!(half.len(), want_half);
    // AND the cost stayed within ⌈N/100⌉ + 10 requests
    println!("{n} runs: {spent} requests; {want_half} runs since the middle: {spent_half} requests");
    assert!(spent <= n.div_ceil(100) as u64 + 10, "{spent} requests for {n} runs");
    assert!(spent_half <= want_half.div_ceil(100) as u64 + 10, "{spent_half} requests for {want_half} runs");
    assert_eq!(client.budget().requests, hub.total_requests(), "the adapter counts what the server saw");
}

#[tokio::test]
async fn a_runs_jobs_come_with_runner_labels_and_queue_times() {
    // GIVEN a repository whose runs have 1 to 4 jobs each
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 30, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    for run in &repo.runs {
        // WHEN a run's jobs are read
        let jobs = client.workflow_jobs(&repo_name(repo), run.id).await.unwrap();
        // THEN they are the truth's, mapped as the workflow_job webhook maps them
        assert_eq!(jobs.len(), run.jobs.len(), "run {}", run.id);
        for (got, truth) in jobs.iter().zip(&run.jobs) {
            let want_os = if truth.labels.iter().any(|l| l.contains("macos")) { "macos" } else { "linux" };
            let want = WorkflowJob {
                repo: repo_name(repo),
                id: truth.id,
                run_id: run.id,
                name: truth.name.clone(),
                workflow_name: Some(truth.workflow_name.clone()),
                head_branch: Some(truth.head_branch.clone()),
                status: RunStatus::parse(&truth.status),
                conclusion: truth.conclusion.clone(),
                labels: truth.labels.clone(),
                runner_name: truth.runner_name.clone(),
                runner_group: truth.runner_group_name.clone(),
                os: Some(want_os.to_owned()),
                created_at: Some(truth.created_at),
                started_at: Some(truth.started_at),
                completed_at: truth.completed_at,
            };
            assert_eq!(got, &want);
        }
    }
    // AND each run cost one request
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"), repo.runs.len() as u64);
}

#[tokio::test]
async fn deployments_since_a_time_come_newest_first_with_every_status() {
    // GIVEN a repository with 150 deployments (more than a page), each with 0 to 4 statuses
    let hub =
        FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 0, deployments: 150, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let name = repo_name(repo);
    let mut created: Vec<Timestamp> = repo.deployments.iter().map(|d| d.created_at).collect();
    created.sort();
    // WHEN every deployment, and those since a time, are read
    let all = client.deployments(&name, None).await.unwrap();
    let since = created[created.len() - 30];
    hub.reset_counters();
    let recent = client.deployments(&name, Some(since)).await.unwrap();
    // THEN they are the truth's, newest first, each with its statuses as the webhooks give them
    assert_eq!(all.len(), repo.deployments.len());
    assert!(all.windows(2).all(|w| w[0].deployment.created_at >= w[1].deployment.created_at));
    let truth: BTreeMap<i64, &fake::Deployment> = repo.deployments.iter().map(|d| (d.id, d)).collect();
    for d in &all {
        let t = truth[&d.deployment.id];
        assert_eq!(
            d.deployment,
            Deployment {
                repo: name.clone(),
                id: t.id,
                sha: Some(t.sha.clone()),
                git_ref: Some(t.git_ref.clone()),
                environment: Some(t.environment.clone()),
                task: Some(t.task.clone()),
                creator: Some(t.creator.clone()),
                created_at: t.created_at,
                updated_at: t.updated_at,
            }
        );
        let mut got: Vec<(i64, String, Timestamp)> =
            d.statuses.iter().map(|s| (s.id, s.state.clone(), s.created_at)).collect();
        got.sort();
        let mut want: Vec<(i64, String, Timestamp)> =
            t.statuses.iter().map(|s| (s.id, s.state.clone(), s.created_at)).collect();
        want.sort();
        assert_eq!(got, want, "statuses of deployment {}", t.id);
        assert!(d.statuses.iter().all(|s| s.deployment_id == t.id && s.repo == name));
    }
    // AND the recent ones are exactly those created since, for one list page and one statuses request each
    let want_recent: BTreeSet<i64> = repo.deployments.iter().filter(|d| d.created_at >= since).map(|d| d.id).collect();
    assert_eq!(recent.iter().map(|d| d.deployment.id).collect::<BTreeSet<_>>(), want_recent);
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/deployments"), 1);
    assert_eq!(
        hub.requests("GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
        want_recent.len() as u64
    );
}

#[tokio::test]
async fn a_repeated_rest_read_is_answered_from_the_cache_with_a_304() {
    // GIVEN a run window read once
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 40, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = repo_name(&hub.org().repos[0]);
    let first = client.run_window(&repo, None).await.unwrap();
    // WHEN it is read again, unchanged on GitHub
    let again = client.run_window(&repo, None).await.unwrap();
    // THEN GitHub answered 304 (free of the rate budget), the answer is the same, and both requests are counted
    assert_eq!(again, first);
    assert_eq!(hub.requests(&format!("304 {RUNS_ENDPOINT}")), 1);
    assert_eq!(hub.requests(RUNS_ENDPOINT), 2);
    assert_eq!(client.budget().requests, 2);
    // AND once a run changes on GitHub, the next read has the change
    let id = first.runs[0].run.id;
    let later = first.runs[0].run.updated_at + chrono::Duration::minutes(5);
    hub.update(|org| {
        let run = org.repos[0].runs.iter_mut().find(|r| r.id == id).unwrap();
        run.updated_at = later;
    });
    let changed = client.run_window(&repo, None).await.unwrap();
    assert_eq!(changed.runs.iter().find(|r| r.run.id == id).map(|r| r.run.updated_at), Some(later));
    assert_eq!(hub.requests(&format!("304 {RUNS_ENDPOINT}")), 1);
}

#[tokio::test]
async fn job_counts_are_read_by_node_id_a_hundred_per_request() {
    // GIVEN 250 runs listed with their node ids, and the id of a run GitHub no longer has
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 250, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let mut ids: Vec<String> = repo.runs.iter().map(|r| r.node_id.clone()).collect();
    ids.insert(17, "WFR_999999999999".to_owned());
    // WHEN their job counts are asked for
    let counts = client.job_counts(&repo.owner, &ids).await.unwrap();
    // THEN every existing run has its jobs (every attempt) and completed jobs counted; the gone one is left out
    let got: BTreeMap<i64, (u64, u64)> = counts.iter().map(|c| (c.run_id, (c.jobs, c.completed))).collect();
    let want: BTreeMap<i64, (u64, u64)> = repo
        .runs
        .iter()
        .map(|r| (r.id, (r.jobs.len() as u64, r.jobs.iter().filter(|j| j.status == "completed").count() as u64)))
        .collect();
    assert_eq!(got, want);
    assert!(want.values().any(|(jobs, done)| done < jobs), "the test needs unfinished jobs");
    // AND 251 ids cost 3 requests
    assert_eq!(hub.requests("graphql RunJobCounts"), 3);
}

#[tokio::test]
async fn a_branchs_commits_since_a_time_are_paged_newest_first() {
    // GIVEN a default branch with 250 commits
    let hub =
        FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 0, commits: 250, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let name = repo_name(repo);
    // WHEN all of them, and those since a time, are read
    let all = client.branch_commits(&name, &repo.default_branch, None).await.unwrap();
    let pages = hub.requests("graphql BranchCommits");
    let since = repo.commits[200].committed_at;
    let recent = client.branch_commits(&name, &repo.default_branch, Some(since)).await.unwrap();
    // THEN they are the truth's commits, newest first, with author name and login
    let want: Vec<Commit> = repo
        .commits
        .iter()
        .rev()
        .map(|c| Commit {
            repo: name.clone(),
            sha: c.sha.clone(),
            message: c.message.clone(),
            author_name: Some(c.author_name.clone()),
            author_login: c.author_login.clone(),
            committed_at: Some(c.committed_at),
        })
        .collect();
    assert_eq!(all, want);
    assert_eq!(pages, 3, "100 per page");
    let want_recent: Vec<Commit> = want.iter().filter(|c| c.committed_at >= Some(since)).cloned().collect();
    assert_eq!(recent, want_recent);
    // AND a branch that does not exist is not found
    let err = client.branch_commits(&name, "no-such-branch", None).await.unwrap_err();
    assert!(matches!(err, GitHubError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_null_pull_request_is_skipped_and_reported_and_the_next_read_has_it() {
    // GIVEN a page of pull requests where GitHub answers one with null and a FORBIDDEN error
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 60, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let repo = &hub.org().repos[0];
    let number = repo.pulls[7].number;
    hub.null_node(fake::NullNode::Pull { repo: repo.full_name(), number }, 1);
    // WHEN the page is read
    let page = client.pull_requests(&repo_name(repo), None).await.unwrap();
    // THEN every other pull request is there with its reviews, and the null one is reported with GitHub's reason
    assert_eq!(page.pulls.len(), repo.pulls.len() - 1);
    assert!(page.pulls.iter().all(|(p, _)| p.number != number));
    for (pr, reviews) in &page.pulls {
        let truth = repo.pulls.iter().find(|p| p.number == pr.number).unwrap();
        assert_eq!(
            (pr, reviews),
            (&expected_pull(&repo_name(repo), truth).0, &expected_pull(&repo_name(repo), truth).1)
        );
    }
    assert_eq!(page.skipped.len(), 1, "{:?}", page.skipped);
    assert!(page.skipped[0].what.contains(&repo.full_name()), "{:?}", page.skipped);
    assert!(page.skipped[0].why.contains("FORBIDDEN"), "{:?}", page.skipped);
    // AND the next read (GitHub answering it again) has it
    let (pulls, _) = all_pulls(&client, &repo_name(repo)).await;
    assert_pulls_match_truth(repo, &pulls);
}

#[tokio::test]
async fn a_null_pull_request_in_a_snapshot_leaves_only_it_out() {
    // GIVEN the newest-updated pull request of a repository comes back null (with a FORBIDDEN error) once
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 30, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let org = hub.org();
    let names: Vec<RepoName> = org.repos.iter().map(repo_name).collect();
    let want = expected_snapshot(&org.repos[0], None);
    let nulled = want.recent_pulls[3].number;
    hub.null_node(fake::NullNode::Pull { repo: org.repos[0].full_name(), number: nulled }, 1);
    // WHEN the repositories are snapshotted
    let snaps = client.repo_snapshots(&requests(&names)).await.unwrap();
    // THEN that pull request alone is missing from its repository's recent list; the rest is the truth
    let mut without = want.clone();
    without.recent_pulls.retain(|m| m.number != nulled);
    assert_eq!(sorted_branches(snaps[0].clone()), without);
    assert_eq!(sorted_branches(snaps[1].clone()), expected_snapshot(&org.repos[1], None));
    // AND the next snapshot has it again
    let again = client.repo_snapshots(&requests(&names[..1])).await.unwrap();
    assert_eq!(sorted_branches(again[0].clone()), want);
}

#[tokio::test]
async fn more_runs_in_one_second_than_github_can_list_is_an_error_not_a_silent_gap() {
    // GIVEN 1,050 runs created within the same second (no `created` window can list them all)
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 1_050, deployments: 0, ..OrgSpec::default() })
        .await
        .unwrap();
    let at = hub.org().repos[0].runs[0].created_at;
    hub.update(|org| org.repos[0].runs.iter_mut().for_each(|r| r.created_at = at));
    let client = client_for(&hub, fast_retries()).await;
    // WHEN the runs are walked
    let err = client.workflow_runs(&repo_name(&hub.org().repos[0]), None).await.unwrap_err();
    // THEN the walk says why it cannot finish, after the pages GitHub could list
    assert!(matches!(err, GitHubError::Protocol(_)), "{err:?}");
    assert!(format!("{err:?}").contains("within the second"), "{err:?}");
    assert!(hub.requests(RUNS_ENDPOINT) <= 21, "{:?}", hub.request_counts());
}

#[tokio::test]
async fn a_renamed_and_a_transferred_repository_show_their_id_and_where_they_moved() {
    // GIVEN three repositories: one renamed, one transferred to another account, one left as it was
    let hub = FakeHub::start(OrgSpec { repos: 3, pulls: 12, deployments: 4, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let asked: Vec<RepoName> = hub.org().repos.iter().map(repo_name).collect();
    hub.rename_repo("octo-org/repo-0", "renamed-0").unwrap();
    hub.transfer_repo("octo-org/repo-1", "someone-else").unwrap();

    // WHEN the snapshots are read under the names the store knows (the former ones)
    let snaps = client.repo_snapshots(&requests(&asked)).await.unwrap();

    // THEN each carries GitHub's id, the moved ones where they are now, and otherwise the repository's own snapshot
    let org = hub.org();
    assert_eq!(snaps.len(), 3);
    for ((snap, repo), asked) in snaps.into_iter().zip(&org.repos).zip(&asked) {
        let now = repo_name(repo);
        let want = RepoSnapshot {
            repo: asked.clone(),
            moved_to: (now != *asked).then(|| now.clone()),
            ..expected_snapshot(repo, None)
        };
        assert_eq!(sorted_branches(snap), want, "{asked}");
    }
    let moved: Vec<String> = org.repos.iter().map(|r| r.full_name()).collect();
    assert_eq!(moved, vec!["octo-org/renamed-0", "someone-else/repo-1", "octo-org/repo-2"]);
    drop(org);

    // AND a name asked in another case is the same repository, not a move
    let shouted = RepoName::parse("OCTO-ORG/REPO-2").unwrap();
    let snap = client.repo_snapshots(&requests(std::slice::from_ref(&shouted))).await.unwrap();
    assert_eq!((snap[0].moved_to.as_ref(), snap[0].id), (None, Some(hub.org().repos[2].id)));

    // AND the organisation lists the renamed one under its new name and no longer the transferred one
    let repos = client.org_repos("octo-org").await.unwrap();
    let names: Vec<&str> = repos.iter().map(RepoName::as_str).collect();
    assert_eq!(names, vec!["octo-org/renamed-0", "octo-org/repo-2"]);
}

#[tokio::test]
async fn rest_reads_under_a_former_name_follow_github_s_redirect() {
    // GIVEN a repository with 150 runs and 5 deployments, renamed and then transferred
    let hub =
        FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 150, deployments: 5, ..OrgSpec::default() }).await.unwrap();
    let client = client_for(&hub, fast_retries()).await;
    let old = repo_name(&hub.org().repos[0]);
    hub.rename_repo("octo-org/repo-0", "renamed").unwrap();
    hub.transfer_repo("octo-org/renamed", "someone-else").unwrap();
    let repo = hub.org().repos[0].clone();

    // WHEN its run window, runs, a run's jobs and its deployments are read under the first name
    let window = client.run_window(&old, None).await.unwrap();
    let runs = client.workflow_runs(&old, None).await.unwrap();
    let run = &repo.runs[0];
    let jobs = client.workflow_jobs(&old, run.id).await.unwrap();
    let deployments = client.deployments(&old, None).await.unwrap();

    // THEN each is the repository's, read through GitHub's redirect to it by id
    assert_eq!(window.total, 150);
    let ids: BTreeSet<i64> = runs.iter().map(|r| r.run.id).collect();
    assert_eq!(ids, repo.runs.iter().map(|r| r.id).collect::<BTreeSet<_>>());
    let job_ids: BTreeSet<i64> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(job_ids, run.jobs.iter().map(|j| j.id).collect::<BTreeSet<_>>());
    let got: BTreeMap<i64, usize> = deployments.iter().map(|d| (d.deployment.id, d.statuses.len())).collect();
    let want: BTreeMap<i64, usize> = repo.deployments.iter().map(|d| (d.id, d.statuses.len())).collect();
    assert_eq!(got, want);
    assert!(hub.requests("GET /repos/{owner}/{repo}/actions/runs") >= 2, "the former name was asked");
    assert!(hub.requests("GET /repositories/{repo_id}/actions/runs") >= 2, "the redirect was followed");
    assert!(hub.requests("GET /repositories/{repo_id}/actions/runs/{run_id}/jobs") >= 1);
    assert!(hub.requests("GET /repositories/{repo_id}/deployments") >= 1);
}

/// A server that answers every GET with a redirect to `{location}` (`{self}` is its own address), counting requests.
async fn redirector(location: impl Fn(&str) -> String + Send + Sync + 'static) -> (String, Arc<Mutex<u64>>) {
    let hits: Arc<Mutex<u64>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    let (count, to) = (hits.clone(), location(&own));
    let app = axum::Router::new().fallback(move || {
        let (count, to) = (count.clone(), to.clone());
        async move {
            *count.lock().unwrap() += 1;
            (StatusCode::MOVED_PERMANENTLY, [(axum::http::header::LOCATION, to)], "")
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (own, hits)
}

#[tokio::test]
async fn a_redirect_to_another_host_or_an_endless_one_is_refused() {
    // GIVEN an API that redirects every read to another server
    let (elsewhere, elsewhere_hits) = redirector(|_| "/never".to_owned()).await;
    let target = format!("{elsewhere}/repositories/1/actions/runs");
    let (api, _) = redirector(move |_| target.clone()).await;
    let client = client_at(&api, "a-token", fast_retries()).await;
    let repo = RepoName::parse("octo-org/repo-0").unwrap();

    // WHEN a REST read is made
    let err = client.workflow_runs(&repo, None).await.unwrap_err();
    // THEN it is refused with a clear error, and the other server never saw a request (nor the token)
    assert!(matches!(err, GitHubError::Protocol(_)), "{err:?}");
    let text = format!("{:#}", anyhow::Error::new(err));
    assert!(text.contains("redirect") && text.contains("another host"), "{text}");
    assert_eq!(*elsewhere_hits.lock().unwrap(), 0);

    // GIVEN an API that redirects to itself for ever
    let (looping, hits) = redirector(|own| format!("{own}/repos/octo-org/repo-0/actions/runs")).await;
    let client = client_at(&looping, "a-token", fast_retries()).await;
    // WHEN a REST read is made THEN it gives up after a few hops
    let err = anyhow::Error::new(client.workflow_runs(&repo, None).await.unwrap_err());
    assert!(format!("{err:#}").contains("redirects"), "{err:#}");
    assert_eq!(*hits.lock().unwrap(), 4, "the first request and three hops");
}

//! A GitHub App installed on several accounts: every request goes through the
//! installation on the owner of what it reads, each installation spends its
//! own budget, and the check's and the resync's counts per installation are
//! what the fake GitHub saw.
#![cfg(feature = "github")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use octoscope::adapters::clock::ManualClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig, RetryPolicy};
use octoscope::adapters::local::LocalQueue;
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::config::GitHubCredentials;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::integrity::IntegrityService;
use octoscope::services::resync::{ResyncService, ResyncStores};
use octoscope_fakehub::{self as fake, AppSpec, FakeHub, HubConfig, InstallationSpec, OrgSpec};

const OTHER: &str = "other-org";

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

/// An organisation of `repos` repositories, the last `moved` of them
/// transferred to [`OTHER`]; the app installed on both accounts.
async fn two_accounts(repos: usize, moved: usize) -> FakeHub {
    let app = AppSpec {
        more_installations: vec![InstallationSpec { id: 77_002, account: OTHER.into() }],
        ..AppSpec::default()
    };
    let spec = OrgSpec { repos, pulls: 12, runs: 6, deployments: 2, commits: 8, teams: 2, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let names: Vec<String> = hub.org().repos.iter().rev().take(moved).map(|r| r.full_name()).collect();
    for name in names {
        hub.transfer_repo(&name, OTHER).unwrap();
    }
    hub
}

async fn app_client(hub: &FakeHub) -> Arc<GitHubClient> {
    let auth = GitHubCredentials::App {
        app_id: hub.app().app_id,
        private_key_pem: fake::TEST_APP_PRIVATE_KEY.to_owned(),
        installation_id: None,
    };
    let mut config = GitHubConfig::new(&hub.url, auth);
    config.retry = fast_retries();
    Arc::new(GitHubClient::new(config).await.expect("an app client"))
}

/// A fake GitHub whose app the organisation did not grant `withheld`, over
/// `spec`, with an app client and the repositories' names.
async fn app_without(withheld: &[&str], spec: OrgSpec) -> (FakeHub, Arc<GitHubClient>, Vec<RepoName>) {
    let mut app = AppSpec::default();
    for permission in withheld {
        app.permissions.remove(*permission);
    }
    let hub = FakeHub::start_with(spec, HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let github = app_client(&hub).await;
    let repos = names(&hub);
    (hub, github, repos)
}

fn names(hub: &FakeHub) -> Vec<RepoName> {
    hub.org().repos.iter().map(|r| RepoName::parse(&r.full_name()).unwrap()).collect()
}

struct Services {
    store: Arc<SqliteStore>,
    integrity: IntegrityService,
    resync: ResyncService,
    _dir: tempfile::TempDir,
}

fn services(github: Arc<GitHubClient>, tracked: Tracked) -> Services {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let clock = Arc::new(ManualClock::new(Utc::now() + TimeDelta::minutes(1)));
    let queue = Arc::new(LocalQueue::default());
    let integrity = IntegrityService::new(store.clone(), github.clone(), github.clone(), queue, clock.clone(), tracked);
    let resync = ResyncService::new(ResyncStores::of(store.clone()), github, clock);
    Services { store, integrity, resync, _dir: dir }
}

fn repo_job(id: &str, repo: &RepoName) -> ResyncJob {
    ResyncJob { id: id.into(), target: Target::Repo(repo.clone()), kinds: GapKind::REPO.to_vec(), watermark: None }
}

fn sum(counts: &[&InstallationRequests]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in counts {
        for (k, v) in &c.0 {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_installation_reads_only_its_own_account_and_the_counts_match_the_fake() {
    // GIVEN an app installed on two organisations, two repositories on each
    let hub = two_accounts(4, 2).await;
    let org = hub.org().login.clone();
    let github = app_client(&hub).await;
    let repos = names(&hub);
    let tracked = Tracked { repos: repos.clone(), orgs: vec![org.clone()] };
    let s = services(github.clone(), tracked);

    // WHEN a check runs over both, then a resync of one repository of each
    let check = s.integrity.check(false).await.unwrap();
    let ours = repos.iter().find(|r| r.owner() == org).unwrap();
    let theirs = repos.iter().find(|r| r.owner() == OTHER).unwrap();
    s.resync.run(&repo_job("j-ours", ours), |_| {}).await.unwrap();
    s.resync.run(&repo_job("j-theirs", theirs), |_| {}).await.unwrap();
    let job_ours = s.store.get_job("j-ours").await.unwrap().unwrap();
    let job_theirs = s.store.get_job("j-theirs").await.unwrap().unwrap();

    // THEN no installation read what its account does not own
    assert_eq!(hub.foreign_reads(), vec![], "every request went through the owner's installation");
    // AND every repository was compared, each installation spending its own budget
    assert_eq!(check.repos_compared, 4);
    assert_eq!(check.error, None);
    let per = &check.requests_by_installation;
    assert!(per.get(&org) > 0 && per.get(OTHER) > 0, "{per:?}");
    assert_eq!(per.total(), check.requests, "the breakdown adds up to the total");
    // AND each job spent only its repository's installation
    assert_eq!(job_ours.requests_by_installation.0.keys().collect::<Vec<_>>(), [&org]);
    assert_eq!(job_theirs.requests_by_installation.0.keys().collect::<Vec<_>>(), [OTHER]);
    assert_eq!(job_ours.requests_by_installation.total(), job_ours.requests);
    // AND what the adapter counted per installation is what the fake GitHub saw
    let counted = sum(&[per, &job_ours.requests_by_installation, &job_theirs.requests_by_installation]);
    assert_eq!(counted, hub.installation_requests());
    assert_eq!(github.requests_by_installation().0, hub.installation_requests());
    eprintln!(
        "check of 4 repositories on 2 installations: {per:?}; resyncs: {:?} {:?}",
        job_ours.requests_by_installation, job_theirs.requests_by_installation
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_installation_does_not_stall_or_fail_the_other() {
    // GIVEN two installations, the second one's budget spent for the hour
    let hub = two_accounts(4, 2).await;
    let org = hub.org().login.clone();
    let github = app_client(&hub).await;
    let repos = names(&hub);
    hub.exhaust_budget(OTHER, "graphql");
    hub.exhaust_budget(OTHER, "core");
    let s = services(github.clone(), Tracked { repos: repos.clone(), orgs: vec![] });

    // WHEN a check runs, and a resync of a repository of each
    let started = std::time::Instant::now();
    let check = s.integrity.check(false).await.unwrap();
    let ours = repos.iter().find(|r| r.owner() == org).unwrap();
    let theirs = repos.iter().find(|r| r.owner() == OTHER).unwrap();
    s.resync.run(&repo_job("j-ours", ours), |_| {}).await.unwrap();
    let refused = s.resync.run(&repo_job("j-theirs", theirs), |_| {}).await.unwrap_err();

    // THEN the first installation's repositories were compared and verified, at once
    assert!(started.elapsed() < Duration::from_secs(10), "no wait for the other's reset: {:?}", started.elapsed());
    assert_eq!(check.repos_compared, 2, "{check:?}");
    let verified: Vec<String> = check.verified.iter().map(|t| t.to_string()).collect();
    assert!(check.gaps.iter().all(|g| matches!(&g.target, Target::Repo(r) if r.owner() == org)), "{:?}", check.gaps);
    assert!(verified.iter().all(|t| !t.contains(OTHER)), "{verified:?}");
    // AND the spent installation's job fails for a retry later, the other's succeeded
    assert!(refused.is_retryable(), "{refused:?}");
    let job_ours = s.store.get_job("j-ours").await.unwrap().unwrap();
    assert_eq!(job_ours.state, JobState::Succeeded);
    assert_eq!(job_ours.requests_by_installation.0.keys().collect::<Vec<_>>(), [&org]);
    // AND the spent installation sent no more than its one refused snapshot and one refused read
    assert!(hub.installation_requests().get(OTHER).copied().unwrap_or(0) <= 2, "{:?}", hub.installation_requests());
    assert_eq!(hub.foreign_reads(), vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_without_an_installation_is_that_target_s_error_only() {
    // GIVEN the app installed on the organisation only, one repository moved to an account without it
    let hub = FakeHub::start(OrgSpec { repos: 3, pulls: 5, runs: 3, ..OrgSpec::default() }).await.unwrap();
    let gone = hub.org().repos[2].full_name();
    hub.transfer_repo(&gone, "elsewhere").unwrap();
    let github = app_client(&hub).await;
    let repos = names(&hub);
    let lost = repos.iter().find(|r| r.owner() == "elsewhere").unwrap().clone();
    let s = services(github.clone(), Tracked { repos: repos.clone(), orgs: vec![] });

    // WHEN checked, and the lost repository's resync runs
    let check = s.integrity.check(false).await.unwrap();
    let err = s.resync.run(&repo_job("j-lost", &lost), |_| {}).await.unwrap_err();
    let read = github.pull_requests(&lost, None).await.unwrap_err();

    // THEN the other repositories were compared; the lost one is not verified
    assert_eq!(check.repos_compared, 2);
    assert!(!check.verified.contains(&Target::Repo(lost.clone())));
    // AND its resync fails for good, naming the owner
    assert!(matches!(read, GitHubError::NotInstalled { ref owner } if owner == "elsewhere"), "{read:?}");
    assert!(!err.is_retryable(), "{err:?}");
    let job = s.store.get_job("j-lost").await.unwrap().unwrap();
    assert!(job.error.as_deref().is_some_and(|e| e.contains("not installed on elsewhere")), "{job:?}");
    // AND nothing was asked of GitHub about it
    assert_eq!(job.requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_check_of_a_hundred_repositories_on_one_installation_stays_within_budget() {
    // GIVEN 100 repositories on the organisation and 3 on another installation, stored whole
    let hub = two_accounts(103, 3).await;
    let org = hub.org().login.clone();
    let github = app_client(&hub).await;
    let s = services(github.clone(), Tracked { repos: names(&hub), orgs: vec![] });
    let first = s.integrity.check(false).await.unwrap();
    for (i, gap) in
        first.gaps.iter().map(|g| g.target.clone()).collect::<std::collections::BTreeSet<_>>().iter().enumerate()
    {
        let job =
            ResyncJob { id: format!("j{i}"), target: gap.clone(), kinds: GapKind::REPO.to_vec(), watermark: None };
        s.resync.run(&job, |_| {}).await.unwrap();
    }
    let settle = s.integrity.check(false).await.unwrap();
    assert_eq!(settle.gaps, vec![], "the store holds everything");

    // WHEN checked again, nothing having changed
    hub.reset_counters();
    let check = s.integrity.check(false).await.unwrap();
    let graphql = hub.requests("POST /graphql");
    let rest = hub.total_requests() - graphql;

    // THEN the organisation's installation spent at most 3 GraphQL + 1 REST per repository, the other's on its 3 only
    let per = &check.requests_by_installation;
    assert!(per.get(&org) <= 4 * 100, "{per:?}");
    assert!(per.get(OTHER) <= 4 * 3, "{per:?}");
    assert_eq!(per.total(), check.requests);
    assert!(graphql <= 3 * 103 && rest <= 103, "{graphql} GraphQL, {rest} REST");
    assert_eq!(hub.foreign_reads(), vec![]);
    eprintln!(
        "unchanged check, 100 + 3 repositories: {per:?} (total {}; {graphql} GraphQL, {rest} REST)",
        check.requests
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_not_granted_deployments_or_actions_resyncs_and_checks_everything_else() {
    // GIVEN an app the organisation granted neither Deployments nor Actions, over a repository with both
    let spec = OrgSpec { repos: 1, pulls: 6, runs: 3, deployments: 2, commits: 4, ..OrgSpec::default() };
    let (hub, github, repos) = app_without(&["deployments", "actions"], spec).await;
    let s = services(github.clone(), Tracked { repos: repos.clone(), orgs: vec![] });

    // AND one deployment the store learnt of otherwise (a repository webhook)
    let now = Utc::now();
    let d = Deployment {
        repo: repos[0].clone(),
        id: hub.org().repos[0].deployments[0].id,
        sha: None,
        git_ref: None,
        environment: Some("production".into()),
        task: None,
        creator: None,
        created_at: now,
        updated_at: now,
    };
    s.store.apply_changes(&[Change::Deployment(d)]).await.unwrap();

    // WHEN the repository is resynced, then checked twice
    let job = s.resync.run(&repo_job("j-1", &repos[0]), |_| {}).await;
    let first = s.integrity.check(false).await.unwrap();
    let second = s.integrity.check(false).await.unwrap();

    // THEN the resync stored what the token can read and says what it could not
    job.unwrap();
    let record = s.store.get_job("j-1").await.unwrap().unwrap();
    assert_eq!(s.store.list_pulls(&PullFilter::default(), &PageRequest::first(100)).await.unwrap().items.len(), 6);
    assert!(record.skipped.iter().any(|s| s.starts_with("deployments: not read")), "{record:?}");
    assert!(record.skipped.iter().any(|s| s.starts_with("workflow runs and jobs: not read")), "{record:?}");
    assert_eq!((record.state, record.error.as_deref()), (JobState::Succeeded, None));
    let commits = s.store.list_commits(&repos[0], None, &PageRequest::first(100)).await.unwrap();
    assert_eq!(commits.items.len(), 4, "the commits were read after the kinds left out");
    // AND the check compares the rest, finds it complete and does not ask for deployments again and again
    for check in [&first, &second] {
        assert_eq!(check.error, None, "{check:?}");
        assert_eq!(check.repos_compared, 1);
        assert!(check.verified.contains(&Target::Repo(repos[0].clone())), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_not_granted_members_checks_the_organisation_s_repositories_still() {
    // GIVEN an app the organisation did not grant Members, the organisation tracked
    let spec = OrgSpec { repos: 2, pulls: 2, teams: 2, ..OrgSpec::default() };
    let (hub, github, repos) = app_without(&["members"], spec).await;
    let org = hub.org().login.clone();
    let s = services(github.clone(), Tracked { repos: repos[..1].to_vec(), orgs: vec![org.clone()] });

    // WHEN checked, and the organisation's resync runs
    let check = s.integrity.check(false).await.unwrap();
    let org_job = ResyncJob {
        id: "j-org".into(),
        target: Target::Org(org.clone()),
        kinds: vec![GapKind::Teams, GapKind::Repos],
        watermark: None,
    };
    let resync = s.resync.run(&org_job, |_| {}).await;

    // THEN the check did not fail: the repository it does not track yet is found, the teams are not compared
    assert_eq!(check.error, None, "{check:?}");
    assert_eq!(check.orgs_compared, 1, "{check:?}");
    assert!(check.gaps.iter().any(|g| g.kind == GapKind::Repos && g.reason.contains("repo-1")), "{check:?}");
    assert!(check.gaps.iter().all(|g| g.kind != GapKind::Teams), "{check:?}");
    // AND the organisation's resync reads its repositories and says it could not read the teams
    resync.unwrap();
    let record = s.store.get_job("j-org").await.unwrap().unwrap();
    assert!(record.skipped.iter().any(|s| s.starts_with("teams: not read")), "{record:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_not_granted_contents_resyncs_and_checks_everything_but_commits() {
    // GIVEN an app the organisation did not grant Contents, over a repository with commits
    let spec = OrgSpec { repos: 1, pulls: 3, runs: 2, deployments: 1, commits: 4, ..OrgSpec::default() };
    let (_hub, github, repos) = app_without(&["contents"], spec).await;
    let s = services(github.clone(), Tracked { repos: repos.clone(), orgs: vec![] });

    // WHEN the repository is resynced, then checked
    let job = s.resync.run(&repo_job("j-1", &repos[0]), |_| {}).await;
    let check = s.integrity.check(false).await.unwrap();

    // THEN the resync read the rest and says it could not read the commits
    job.unwrap();
    let record = s.store.get_job("j-1").await.unwrap().unwrap();
    assert!(record.skipped.iter().any(|s| s.starts_with("commits: not read")), "{record:?}");
    assert_eq!(s.store.list_pulls(&PullFilter::default(), &PageRequest::first(100)).await.unwrap().items.len(), 3);
    // AND the check compares the rest and finds it complete
    assert_eq!((check.error.as_deref(), check.repos_compared), (None, 1), "{check:?}");
    assert!(check.verified.contains(&Target::Repo(repos[0].clone())), "{check:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_not_granted_checks_reads_jobs_without_asking_for_their_counts() {
    // GIVEN an app the organisation did not grant Checks, over a repository with workflow runs
    let spec = OrgSpec { repos: 1, pulls: 1, runs: 3, ..OrgSpec::default() };
    let (hub, github, repos) = app_without(&["checks"], spec).await;
    let s = services(github.clone(), Tracked { repos: repos.clone(), orgs: vec![] });

    // WHEN the repository is resynced, then checked
    let job = s.resync.run(&repo_job("j-1", &repos[0]), |_| {}).await;
    let check = s.integrity.check(false).await.unwrap();

    // THEN the runs' jobs were read over REST, and no job count was asked for (GitHub would null every run)
    job.unwrap();
    let jobs: usize = hub.org().repos[0].runs.iter().map(|r| r.jobs.len()).sum();
    assert!(jobs > 0);
    assert_eq!(hub.requests("graphql RunJobCounts"), 0, "{:?}", hub.request_counts());
    let ids: Vec<i64> = hub.org().repos[0].runs.iter().map(|r| r.id).collect();
    let runs = s.store.stored_runs(&repos[0], None, &ids, None).await.unwrap();
    assert_eq!(runs.runs.iter().map(|r| r.jobs).sum::<u64>(), jobs as u64, "{runs:?}");
    // AND the check compares the rest and finds it complete
    assert_eq!((check.error.as_deref(), check.repos_compared), (None, 1), "{check:?}");
    assert!(check.verified.contains(&Target::Repo(repos[0].clone())), "{check:?}");
}

//! The batch job end to end: jobs recorded in DynamoDB (moto) as the
//! dispatcher records them, resynced from the fake GitHub until the store
//! equals its ground truth; a stopped job resumes from its checkpoint; a
//! failing one exits non-zero and releases its lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_config::SdkConfig;
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::config::GitHubCredentials;
use octoscope::domain::*;
use octoscope::domain::{GapKind, JobRecord, JobState, ResyncJob, Target};
use octoscope::ports::*;
use octoscope::ports::{PageRequest, PullFilter, Store};
use octoscope_batch_job::{Outcome, exit, run};
use octoscope_fakehub::{FakeHub, HubConfig, Org, OrgSpec};
use octoscope_testkit::moto::{MotoServer, secure_parameter, unique};

const BIN: &str = env!("CARGO_BIN_EXE_batch-job");

/// A moto server of the test's own ([`MotoServer::start`] says why) and its
/// SDK configuration.
async fn aws() -> (MotoServer, SdkConfig) {
    let moto = MotoServer::start().unwrap();
    let sdk = moto.sdk_config().await;
    (moto, sdk)
}

async fn table(sdk: &SdkConfig) -> (String, Arc<DynamoStore>) {
    let name = unique("octoscope");
    let client = aws_sdk_dynamodb::Client::new(sdk);
    create_table(&client, &name).await.unwrap();
    (name.clone(), Arc::new(DynamoStore::new(client, name)))
}

async fn github(hub: &FakeHub) -> Arc<GitHubClient> {
    let config = GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().to_owned()));
    Arc::new(GitHubClient::new(config).await.unwrap())
}

/// A job as the dispatcher records it (and its lock, taken for the job).
async fn queued(store: &dyn Store, target: Target, kinds: Vec<GapKind>) -> String {
    let id = format!("resync-{}-{target}", unique("test"));
    let now = chrono::Utc::now();
    let job = ResyncJob { id: id.clone(), target: target.clone(), kinds, watermark: None };
    store.save_job(&JobRecord::queued(&job, now)).await.unwrap();
    assert!(store.try_lock(&target.to_string(), &id, now, chrono::TimeDelta::minutes(15)).await.unwrap());
    id
}

fn repo_target(name: &str) -> Target {
    Target::Repo(RepoName::parse(name).unwrap())
}

/// A fake GitHub organisation of one repository with `pulls` pull requests
/// (served at most `page_cap` a GraphQL page), a fresh table on moto, and
/// that repository as a resync target.
struct OneRepo {
    moto: MotoServer,
    hub: FakeHub,
    org: Org,
    sdk: SdkConfig,
    table: String,
    store: Arc<DynamoStore>,
    target: Target,
}

async fn one_repo(pulls: usize, page_cap: Option<usize>) -> OneRepo {
    let spec = OrgSpec { repos: 1, pulls, teams: 0, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { page_cap, ..HubConfig::default() }).await.unwrap();
    let org = hub.org().clone();
    let (moto, sdk) = aws().await;
    let (table, store) = table(&sdk).await;
    let target = repo_target(&org.repos[0].full_name());
    OneRepo { moto, hub, org, sdk, table, store, target }
}

/// Whether another owner could take the target's lock now (it is given back at once).
async fn lock_is_free(store: &dyn Store, target: &Target) -> bool {
    let (key, probe) = (target.to_string(), unique("probe"));
    let free = store.try_lock(&key, &probe, chrono::Utc::now(), chrono::TimeDelta::seconds(1)).await.unwrap();
    if free {
        store.release_lock(&key, &probe).await.unwrap();
    }
    free
}

/// Every difference between the store and the ground truth (pull requests,
/// their reviews and states, branch heads; teams when `teams`).
async fn differences(store: &dyn Store, org: &Org, teams: bool) -> Vec<String> {
    let mut diffs = Vec::new();
    for repo in &org.repos {
        let name = RepoName::parse(&repo.full_name()).unwrap();
        let filter = PullFilter { repo: Some(name.clone()), state: None, author: None };
        let pulls = store.list_pulls(&filter, &PageRequest::first(500)).await.unwrap().items;
        if pulls.len() != repo.pulls.len() {
            diffs.push(format!("{name}: {} pull requests here, {} on GitHub", pulls.len(), repo.pulls.len()));
        }
        for truth in &repo.pulls {
            let Some(p) = pulls.iter().find(|p| p.number == truth.number) else {
                diffs.push(format!("{name}#{} missing", truth.number));
                continue;
            };
            let state = truth.state.graphql().to_ascii_lowercase();
            if p.state.as_str() != state || p.merged_at != truth.merged_at || p.closed_at != truth.closed_at {
                diffs.push(format!("{name}#{}: {} vs {state}", truth.number, p.state.as_str()));
            }
            let detail = store.get_pull(&name, truth.number).await.unwrap().unwrap();
            let mut got: Vec<(i64, String)> =
                detail.reviews.iter().map(|r| (r.id, r.state.as_str().to_owned())).collect();
            let mut want: Vec<(i64, String)> =
                truth.reviews.iter().map(|r| (r.id, r.state.webhook().to_owned())).collect();
            got.sort();
            want.sort();
            if got != want {
                diffs.push(format!("{name}#{} reviews differ", truth.number));
            }
        }
        let ours = store.repo_summaries(&[SnapshotRequest::new(name.clone(), None)]).await.unwrap();
        let mut heads: Vec<(String, String)> = ours.iter().flat_map(|o| o.branches.clone()).collect();
        let mut truth: Vec<(String, String)> =
            repo.branches.iter().map(|b| (b.name.clone(), b.head_sha.clone())).collect();
        heads.sort();
        truth.sort();
        if heads != truth {
            diffs.push(format!("{name} branch heads: {heads:?} vs {truth:?}"));
        }
    }
    if teams {
        let rosters = store.team_rosters(&org.login).await.unwrap();
        for team in &org.teams {
            let mut truth = team.members.clone();
            truth.sort();
            let mut ours = rosters.iter().find(|(s, _)| *s == team.slug).map(|(_, m)| m.clone()).unwrap_or_default();
            ours.sort();
            if ours != truth {
                diffs.push(format!("team {}: {ours:?} vs {truth:?}", team.slug));
            }
        }
    }
    diffs
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_for_every_repository_and_the_organisation_make_the_store_equal_github() {
    // GIVEN a ground-truth organisation (its pull requests served 25 a page:
    // two pages a repository) and an empty table
    let spec = OrgSpec { repos: 2, pulls: 40, teams: 2, members: 8, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { page_cap: Some(25), ..HubConfig::default() }).await.unwrap();
    let org = hub.org().clone();
    let (_moto, sdk) = aws().await;
    let (_, store) = table(&sdk).await;
    let gh = github(&hub).await;
    assert!(!differences(store.as_ref(), &org, true).await.is_empty());

    // WHEN one job per target runs (as the dispatcher queued them)
    let mut targets: Vec<(Target, Vec<GapKind>)> = org
        .repos
        .iter()
        .map(|r| (repo_target(&r.full_name()), vec![GapKind::Pulls, GapKind::Branches, GapKind::WorkflowRuns]))
        .collect();
    targets.push((Target::Org(org.login.clone()), vec![GapKind::Teams]));
    for (target, kinds) in targets {
        let id = queued(store.as_ref(), target.clone(), kinds).await;
        let outcome = run(store.clone(), gh.clone(), Arc::new(SystemClock), &id).await.unwrap();
        assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
        // THEN each is recorded as succeeded, and its lock is released
        assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, JobState::Succeeded);
        assert!(lock_is_free(store.as_ref(), &target).await, "{target}");
        // AND running it again does nothing more
        let again = run(store.clone(), gh.clone(), Arc::new(SystemClock), &id).await.unwrap();
        assert_eq!(again, Outcome::AlreadyDone);
    }

    // AND the store equals the ground truth
    let left = differences(store.as_ref(), &org, true).await;
    assert!(left.is_empty(), "{} differences, e.g. {:?}", left.len(), &left[..left.len().min(3)]);
}

/// GitHub, failing every pull request page after the first `pages` (a task stopped mid-way).
struct StopsAfter {
    inner: Arc<GitHubClient>,
    pages: AtomicUsize,
    /// The cursor of every pull request page asked for.
    cursors: std::sync::Mutex<Vec<Option<String>>>,
}

impl Budgeted for StopsAfter {
    fn budget(&self) -> RateBudget {
        self.inner.budget()
    }
}

#[async_trait]
impl GitHubChecks for StopsAfter {
    async fn repo_snapshots(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, GitHubError> {
        self.inner.repo_snapshots(repos).await
    }
    async fn org_snapshots(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, GitHubError> {
        self.inner.org_snapshots(orgs).await
    }
    async fn run_window(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<RunWindow, GitHubError> {
        self.inner.run_window(repo, since).await
    }
    async fn job_counts(&self, owner: &str, node_ids: &[String]) -> Result<Vec<JobCount>, GitHubError> {
        self.inner.job_counts(owner, node_ids).await
    }
}

#[async_trait]
impl GitHubSource for StopsAfter {
    async fn pull_requests(&self, repo: &RepoName, cursor: Option<&str>) -> Result<PullPage, GitHubError> {
        self.cursors.lock().unwrap().push(cursor.map(str::to_owned));
        if self.pages.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(GitHubError::Forbidden("the task was stopped".into()));
        }
        self.inner.pull_requests(repo, cursor).await
    }
    async fn teams(&self, org: &str) -> Result<Vec<TeamRoster>, GitHubError> {
        self.inner.teams(org).await
    }
    async fn org_repos(&self, org: &str) -> Result<Vec<RepoName>, GitHubError> {
        self.inner.org_repos(org).await
    }
    async fn branches(&self, repo: &RepoName) -> Result<Vec<Branch>, GitHubError> {
        self.inner.branches(repo).await
    }
    async fn workflow_runs(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<Vec<ListedRun>, GitHubError> {
        self.inner.workflow_runs(repo, since).await
    }
    async fn workflow_jobs(&self, repo: &RepoName, run_id: i64) -> Result<Vec<WorkflowJob>, GitHubError> {
        self.inner.workflow_jobs(repo, run_id).await
    }
    async fn deployments(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
    ) -> Result<Vec<DeploymentWithStatuses>, GitHubError> {
        self.inner.deployments(repo, since).await
    }
    async fn branch_commits(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<Commit>, GitHubError> {
        self.inner.branch_commits(repo, branch, since).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stopped_mid_way_resumes_from_its_checkpoint() {
    // GIVEN a repository of 50 pull requests served 20 a page (3 pages: the
    // pages matter here, not the writes of 100 a page) and a job for it
    let OneRepo { moto: _moto, hub, org, store, target, .. } = one_repo(50, Some(20)).await;
    let id = queued(store.as_ref(), target.clone(), vec![GapKind::Pulls, GapKind::Branches]).await;

    // WHEN the task stops after its first page
    let stopping =
        Arc::new(StopsAfter { inner: github(&hub).await, pages: AtomicUsize::new(1), cursors: Default::default() });
    let err = run(store.clone(), stopping.clone(), Arc::new(SystemClock), &id).await.unwrap_err();

    // THEN the job is failed (not retryable: it was refused), its lock released, its cursor kept
    assert_eq!(err.exit_code(), exit::FAILED, "{err}");
    assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, JobState::Failed);
    assert!(lock_is_free(store.as_ref(), &target).await);
    let checkpoint = store.checkpoint(&id).await.unwrap().expect("the first page's cursor is saved");

    // WHEN the same job runs again
    let resuming =
        Arc::new(StopsAfter { inner: github(&hub).await, pages: AtomicUsize::new(100), cursors: Default::default() });
    let outcome = run(store.clone(), resuming.clone(), Arc::new(SystemClock), &id).await.unwrap();

    // THEN it starts at the checkpoint, not at the first page, and the store converges
    let cursors = resuming.cursors.lock().unwrap().clone();
    assert_eq!(cursors.first(), Some(&Some(checkpoint)), "{cursors:?}");
    assert_eq!(cursors.len(), 2, "two pages left: {cursors:?}");
    assert!(matches!(outcome, Outcome::Done(_)));
    assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, JobState::Succeeded);
    let left = differences(store.as_ref(), &org, false).await;
    assert!(left.is_empty(), "{left:?}");
}

/// The binary, with the environment the ECS task definition gives it.
fn batch_job(moto: &MotoServer, table: &str, job_id: &str, token_param: &str, hub: &FakeHub) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear()
        .envs(moto.env())
        .env("OCTOSCOPE_TABLE", table)
        .env("OCTOSCOPE_JOB_ID", job_id)
        .env("GITHUB_TOKEN_PARAM", token_param)
        .env("GITHUB_API_URL", &hub.url)
        .env("RUST_LOG", "info");
    cmd.output().unwrap()
}

async fn parameter(sdk: &SdkConfig, value: &str) -> String {
    secure_parameter(sdk, "github-token", value).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_exits_zero_when_done_non_zero_on_failure_and_always_releases_the_lock() {
    let OneRepo { moto, hub, org, sdk, table, store, target } = one_repo(30, None).await;

    // GIVEN a job and a token GitHub refuses WHEN the task runs
    let id = queued(store.as_ref(), target.clone(), vec![GapKind::Pulls]).await;
    let revoked = parameter(&sdk, "ghp_revoked").await;
    let out = tokio::task::block_in_place(|| batch_job(&moto, &table, &id, &revoked, &hub));
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // THEN it exits non-zero, the job is failed with the reason, the lock is free, the token is not printed
    assert_eq!(out.status.code(), Some(exit::FAILED), "{said}");
    let job = store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.as_deref().unwrap_or_default().contains("credentials"), "{job:?}");
    assert!(lock_is_free(store.as_ref(), &target).await);
    assert!(!said.contains("ghp_revoked"), "{said}");

    // GIVEN the right token WHEN a new job runs THEN it exits 0 and the repository matches GitHub
    let id = queued(store.as_ref(), target.clone(), vec![GapKind::Pulls, GapKind::Branches]).await;
    let param = parameter(&sdk, hub.token()).await;
    let out = tokio::task::block_in_place(|| batch_job(&moto, &table, &id, &param, &hub));
    assert_eq!(out.status.code(), Some(exit::OK), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.get_job(&id).await.unwrap().unwrap().state, JobState::Succeeded);
    assert!(differences(store.as_ref(), &org, false).await.is_empty());

    // AND a job id the store does not hold is bad input
    let out = tokio::task::block_in_place(|| batch_job(&moto, &table, "resync-unknown", &param, &hub));
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT));
}

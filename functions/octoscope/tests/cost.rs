//! What completeness costs in GitHub requests, and a backfill killed mid-way
//! resuming from its checkpoint — through the real binary against the fake GitHub.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::RepoName;
use octoscope::ports::store::*;
use octoscope::ports::{PageRequest, PullFilter};
use octoscope_fakehub::{FakeHub, HubConfig, OrgSpec, WebhookSpec};
use octoscope_testkit::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");

fn octoscope(hub: &FakeHub, data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GITHUB_API_URL", &hub.url)
        .env("GITHUB_TOKEN", hub.token())
        .env_remove("GITHUB_APP_ID")
        .env_remove("OCTOSCOPE_REPOS")
        .env_remove("OCTOSCOPE_ORGS");
    cmd
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    said
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_of_ten_thousand_pull_requests_takes_at_most_107_requests() {
    // GIVEN a repository with 10,000 pull requests and their reviews (and no CI or deployments)
    let spec = OrgSpec { repos: 1, pulls: 10_000, teams: 0, runs: 0, deployments: 0, ..OrgSpec::default() };
    let hub = FakeHub::start(spec).await.unwrap();
    let repo = hub.org().repos[0].full_name();
    let reviews: usize = hub.org().repos[0].pulls.iter().map(|p| p.reviews.len()).sum();
    assert!(reviews > 10_000, "reviews included: {reviews}");
    let dir = tempfile::tempdir().unwrap();
    // WHEN it is backfilled
    let t0 = Instant::now();
    let said = run(octoscope(&hub, dir.path(), &["backfill", "--repo", &repo]));
    assert!(said.contains(&format!("repo:{repo}: 10000 pull requests in 100 pages")), "{said}");
    let requests = hub.total_requests();
    eprintln!(
        "cost: backfill of 10,000 pull requests ({reviews} reviews) took {requests} GitHub requests in {:.1} s: {:?}",
        t0.elapsed().as_secs_f64(),
        hub.request_counts()
    );
    // THEN it took at most 102 requests for the pull requests and their reviews, 5 for
    // the other kinds (branches, runs, deployments, the default branch and its history),
    // and the store holds every pull request with its reviews
    assert!(requests <= 107, "{requests} requests: {:?}", hub.request_counts());
    let store = SqliteStore::open(&dir.path().join("octoscope.db")).unwrap();
    assert_eq!(store.stats().await.unwrap().pull_requests, 10_000);
    let name = RepoName::parse(&repo).unwrap();
    for pull in hub.org().repos[0].pulls.iter().step_by(997) {
        let got = store.get_pull(&name, pull.number).await.unwrap().unwrap();
        assert_eq!(got.reviews.len(), pull.reviews.len(), "#{}", pull.number);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_of_a_hundred_unchanged_repositories_takes_three_graphql_requests_and_one_rest_request_each() {
    // GIVEN 100 repositories whose whole history (pull requests, reviews, runs and
    // their jobs, deployments, commits) arrived by webhook
    let hub = FakeHub::start(OrgSpec {
        repos: 100,
        pulls: 3,
        teams: 2,
        members: 6,
        branches: 1,
        runs: 2,
        ..OrgSpec::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSpec::default().secret;
    let server = Server::start_with_args(
        Path::new(BIN),
        dir.path(),
        &[("GITHUB_WEBHOOK_SECRET", &secret)],
        &["--check-interval", "0"],
    )
    .unwrap();
    let sent = hub
        .send_webhooks(&format!("{}/webhook", server.base), &WebhookSpec { concurrency: 4, ..WebhookSpec::default() })
        .await
        .unwrap();
    assert!(sent.statuses.keys().all(|s| (200..300).contains(s)), "{:?}", sent.statuses);
    let client = octoscope_testkit::http().build().unwrap();
    let health = |client: reqwest::Client, base: String| async move {
        let h: Value = client.get(format!("{base}/api/health")).send().await.unwrap().json().await.unwrap();
        h["stats"].clone()
    };
    let before = health(client.clone(), server.base.clone()).await;
    assert_eq!(before["repositories"], 100);
    // AND a first check, which compares the whole history (every run's job counts too)
    hub.reset_counters();
    let said = run(octoscope(&hub, dir.path(), &["check"]));
    assert!(said.contains("no gaps"), "{said}");
    eprintln!(
        "cost: first check of 100 repositories: {} GraphQL requests, {} in all: {:?}",
        hub.requests("POST /graphql"),
        hub.total_requests(),
        hub.request_counts()
    );
    hub.reset_counters();
    // WHEN the integrity check runs again, nothing having changed
    let said = run(octoscope(&hub, dir.path(), &["check"]));
    let graphql = hub.requests("POST /graphql");
    let runs = hub.requests("GET /repos/{owner}/{repo}/actions/runs");
    eprintln!(
        "cost: check of 100 unchanged repositories: {graphql} GraphQL requests, {runs} REST requests for runs, \
         {} in all: {:?}",
        hub.total_requests(),
        hub.request_counts()
    );
    // THEN it asks GitHub at most 3 GraphQL requests and 1 REST request per repository for runs,
    // finds no gap, and writes no entity
    assert!(said.contains("checked 100 repositories and 1 organisations"), "{said}");
    assert!(said.contains("no gaps"), "{said}");
    assert!(graphql <= 3, "{graphql} GraphQL requests: {:?}", hub.request_counts());
    assert!(runs <= 100, "{runs} REST requests for runs: {:?}", hub.request_counts());
    assert_eq!(health(client.clone(), server.base.clone()).await, before);
    let integrity: Value =
        client.get(format!("{}/api/integrity", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(integrity["open_gaps"], 0);
    assert!(integrity["jobs"].as_array().unwrap().is_empty(), "no resync job: {integrity}");
    assert_eq!(integrity["items"].as_array().unwrap().len(), 2, "both checks are recorded: {integrity}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_killed_mid_way_resumes_from_its_checkpoint() {
    // GIVEN a slow GitHub (20 ms a request) and 3,000 pull requests: 30 pages
    let hub = FakeHub::start_with(
        OrgSpec { repos: 1, pulls: 3_000, teams: 0, ..OrgSpec::default() },
        HubConfig { latency: Duration::from_millis(20), ..HubConfig::default() },
    )
    .await
    .unwrap();
    let repo = hub.org().repos[0].full_name();
    let dir = tempfile::tempdir().unwrap();
    let job_id = format!("backfill-repo:{repo}");
    // WHEN the backfill is killed (SIGKILL) once it has checkpointed a few pages
    let mut child = octoscope(&hub, dir.path(), &["backfill", "--repo", &repo]).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let store = loop {
        if let Ok(store) = SqliteStore::open(&dir.path().join("octoscope.db"))
            && store.stats().await.map(|s| s.pull_requests >= 500).unwrap_or(false)
        {
            break store;
        }
        assert!(Instant::now() < deadline, "the backfill never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let checkpoint = store.checkpoint(&job_id).await.unwrap();
    let written = store.stats().await.unwrap().pull_requests;
    assert!(checkpoint.is_some() && written < 3_000, "killed mid-way: {written} written, checkpoint {checkpoint:?}");
    let first_pages = hub.requests("graphql PullRequests");
    hub.reset_counters();
    // THEN run again, it resumes: it reads only the pages it had not stored, and converges
    run(octoscope(&hub, dir.path(), &["backfill", "--repo", &repo]));
    let second_pages = hub.requests("graphql PullRequests");
    eprintln!(
        "resume: killed after {first_pages} pages ({written} pull requests stored); the rerun read {second_pages} pages"
    );
    assert!(second_pages < 30 && first_pages + second_pages <= 31, "first {first_pages}, then {second_pages} pages");
    assert_eq!(store.stats().await.unwrap().pull_requests, 3_000);
    assert_eq!(store.checkpoint(&job_id).await.unwrap(), None, "a finished job leaves no checkpoint");
    let all = store.list_pulls(&PullFilter::default(), &PageRequest::first(5)).await.unwrap();
    assert_eq!(all.items.len(), 5);
}

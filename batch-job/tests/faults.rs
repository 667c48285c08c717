//! Fault drills on the batch job: its DynamoDB client talks to moto through
//! the testkit's fault proxy, which fails one of its calls mid-run (the
//! checkpoint after the second page, the target's lock at the start, a
//! page's writes). The job ends with the retryable code (75), its record
//! `failed`, its lock released; run again, faults off, it resumes from its
//! checkpoint (counted in GitHub requests to the fake GitHub: fewer pull
//! request pages than a run from scratch) and the store equals GitHub.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::config::GitHubCredentials;
use octoscope::domain::{GapKind, JobRecord, JobState, RepoName, ResyncJob, Target};
use octoscope::ports::store::*;
use octoscope::ports::{PageRequest, PullFilter, Store};
use octoscope_batch_job::{Outcome, exit, run};
use octoscope_fakehub::{FakeHub, HubConfig, Org, OrgSpec};
use octoscope_testkit::faults::{Fault, FaultProxy, Rule};
use octoscope_testkit::moto::{MotoServer, secure_parameter, unique};

const BIN: &str = env!("CARGO_BIN_EXE_batch-job");
/// Long: moto answers the resync's Query of a repository's items slowly on a
/// loaded machine (over 5 s measured), so no delay drill runs here (the
/// webhook's and the dispatcher's do).
const ATTEMPT: Duration = Duration::from_secs(30);
/// 50 pull requests, served 20 a page (the fake GitHub's page cap): three
/// pages of GraphQL, at a fifth of the writes of three full pages (moto
/// takes about 20 ms a request, and each drill writes them all).
const PULLS: usize = 50;
const PAGE_CAP: usize = 20;
const PAGES: u64 = 3;
const PAGE_READS: &str = "graphql PullRequests";

/// A fake GitHub organisation of one repository, a table on a moto server of
/// its own, the job's store through a fault proxy, and a job for the
/// repository as the dispatcher records it (its lock taken for it).
struct Drill {
    /// Its own server ([`MotoServer::start`] says why).
    moto: MotoServer,
    hub: FakeHub,
    org: Org,
    sdk: SdkConfig,
    table: String,
    /// Past the proxy.
    store: Arc<DynamoStore>,
    /// Through the proxy.
    faulty: Arc<DynamoStore>,
    proxy: FaultProxy,
    target: Target,
    job: String,
}

async fn drill() -> Drill {
    let spec =
        OrgSpec { repos: 1, pulls: PULLS, teams: 0, max_reviews: 1, pulls_with_many_reviews: 0, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { page_cap: Some(PAGE_CAP), ..HubConfig::default() }).await.unwrap();
    let org = hub.org().clone();
    let moto = MotoServer::start().unwrap();
    let sdk = moto.sdk_config().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table));
    let proxy = FaultProxy::start(&moto.endpoint).await.unwrap();
    let proxied = octoscope_testkit::faults::sdk_config(&proxy.url, ATTEMPT).await;
    let faulty = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&proxied), &table));
    let target = Target::Repo(RepoName::parse(&org.repos[0].full_name()).unwrap());
    let job = format!("resync-{}-{target}", unique("drill"));
    let now = chrono::Utc::now();
    let spec = ResyncJob { id: job.clone(), target: target.clone(), kinds: vec![GapKind::Pulls], watermark: None };
    store.save_job(&JobRecord::queued(&spec, now)).await.unwrap();
    assert!(store.try_lock(&target.to_string(), &job, now, chrono::TimeDelta::minutes(15)).await.unwrap());
    Drill { moto, hub, org, sdk, table, store, faulty, proxy, target, job }
}

async fn github(hub: &FakeHub) -> Arc<GitHubClient> {
    let config = GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().to_owned()));
    Arc::new(GitHubClient::new(config).await.unwrap())
}

async fn lock_is_free(store: &dyn Store, target: &Target) -> bool {
    let (key, probe) = (target.to_string(), unique("probe"));
    let free = store.try_lock(&key, &probe, chrono::Utc::now(), chrono::TimeDelta::seconds(1)).await.unwrap();
    if free {
        store.release_lock(&key, &probe).await.unwrap();
    }
    free
}

/// Pull requests that differ from the ground truth (missing, or another state).
async fn differences(store: &dyn Store, org: &Org) -> Vec<String> {
    let repo = &org.repos[0];
    let name = RepoName::parse(&repo.full_name()).unwrap();
    let filter = PullFilter { repo: Some(name), state: None, author: None };
    let pulls = store.list_pulls(&filter, &PageRequest::first(500)).await.unwrap().items;
    let mut diffs = Vec::new();
    if pulls.len() != repo.pulls.len() {
        diffs.push(format!("{} pull requests here, {} on GitHub", pulls.len(), repo.pulls.len()));
    }
    for truth in &repo.pulls {
        let state = truth.state.graphql().to_ascii_lowercase();
        match pulls.iter().find(|p| p.number == truth.number) {
            None => diffs.push(format!("#{} missing", truth.number)),
            Some(p) if p.state.as_str() != state => diffs.push(format!("#{}: {}", truth.number, p.state.as_str())),
            Some(_) => {}
        }
    }
    diffs
}

/// Which call of the job a drill hits: (name, rule for `fault`).
fn rule(call: &str, d: &Drill, fault: Fault) -> Rule {
    match call {
        // The cursor saved after the second page.
        "checkpoint" => Rule::on("UpdateItem", fault).containing(&format!("CKPT#{}", d.job)).skip(1),
        // The job taking (renewing) its target's lock as it starts.
        "lock" => Rule::on("UpdateItem", fault).containing(&format!("LOCK#{}", d.target)),
        // The writes of the second page's pull requests: a run writes about
        // 2.2 updates naming a `PR#` key per pull request (the pull request,
        // its reviews, its review facts), so about 44 for the first page's 20.
        "page writes" => Rule::on("UpdateItem", fault).containing("\"PR#").skip(60),
        other => panic!("no call {other}"),
    }
}

/// `fault` on `call` (every attempt, until cleared: concurrent writes all meet it); then the run again, faults off.
async fn drill_on(call: &str, fault: Fault) -> String {
    let d = drill().await;
    let gh = github(&d.hub).await;
    d.proxy.add(rule(call, &d, fault).always());
    let name = format!("{fault:?} on the {call}");

    // WHEN the job runs into the fault
    let err = run(d.faulty.clone(), gh.clone(), Arc::new(SystemClock), &d.job).await.expect_err(&name);
    let first = d.hub.requests(PAGE_READS);
    let seen: Vec<String> = d
        .proxy
        .seen()
        .iter()
        .map(|s| format!("{} {:?} {}", s.op, s.fault, s.body.chars().take(150).collect::<String>()))
        .collect();
    assert!(d.proxy.injected() >= 1, "{name}: the rule picked nothing: {err:?} {seen:#?}");
    d.proxy.clear();

    // THEN it ends with the retryable code, its record says failed, its lock is free
    assert_eq!(err.exit_code(), exit::RETRYABLE, "{name}: {err}");
    let record = d.store.get_job(&d.job).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed, "{name}: {record:?}");
    assert!(lock_is_free(d.store.as_ref(), &d.target).await, "{name}: the lock is left held");
    let checkpoint = d.store.checkpoint(&d.job).await.unwrap();
    // The lock fails the job before its first page; the others on its second,
    // after the first page's checkpoint.
    let (pages_before, kept) = if call == "lock" { (0, false) } else { (2, true) };
    assert_eq!(first, pages_before, "{name}: pages read before the fault");
    assert_eq!(checkpoint.is_some(), kept, "{name}: the checkpoint: {checkpoint:?}");

    // WHEN the task runs again (faults off)
    let outcome = run(d.faulty.clone(), gh, Arc::new(SystemClock), &d.job).await;
    let second = d.hub.requests(PAGE_READS) - first;

    // THEN it resumes from its checkpoint: only the pages after it are read, and the store equals GitHub
    let seen: Vec<String> = d
        .proxy
        .seen()
        .iter()
        .rev()
        .take(6)
        .map(|s| format!("{} {:?} {}", s.op, s.fault, s.body.chars().take(150).collect::<String>()))
        .collect();
    assert!(matches!(outcome, Ok(Outcome::Done(_))), "{name}: {outcome:?} {seen:#?}");
    let resumed = checkpoint.is_some();
    if resumed {
        assert!(second < PAGES, "{name}: {second} pages read again, as many as from scratch");
    }
    assert!(first + second <= PAGES + 1, "{name}: {first} + {second} pages read for {PAGES}");
    assert_eq!(d.store.get_job(&d.job).await.unwrap().unwrap().state, JobState::Succeeded, "{name}");
    assert!(lock_is_free(d.store.as_ref(), &d.target).await, "{name}: the lock is left held");
    let left = differences(d.store.as_ref(), &d.org).await;
    assert!(left.is_empty(), "{name}: {left:?}");
    format!("{name}: exit {}, pages {first} then {second}", err.exit_code())
}

async fn drills(call: &str) {
    let mut said = Vec::new();
    for fault in Fault::all(ATTEMPT).into_iter().filter(|f| !matches!(f, Fault::Delay(_))) {
        said.push(drill_on(call, fault).await);
    }
    println!("{}", said.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_checkpoint() {
    drills("checkpoint").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_target_lock() {
    drills("lock").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_a_page_s_writes() {
    drills("page writes").await;
}

/// The binary, with the environment the ECS task definition gives it, its AWS endpoint at `endpoint`.
fn batch_job(d: &Drill, endpoint: &str, token_param: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear()
        .envs(d.moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("OCTOSCOPE_TABLE", &d.table)
        .env("OCTOSCOPE_JOB_ID", &d.job)
        .env("GITHUB_TOKEN_PARAM", token_param)
        .env("GITHUB_API_URL", &d.hub.url)
        .env("RUST_LOG", "info");
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_exits_75_under_throttling_and_its_rerun_resumes_and_converges() {
    // GIVEN a job, and DynamoDB throttling every checkpoint write after the first
    let d = drill().await;
    let param = secure_parameter(&d.sdk, "github-token", d.hub.token()).await.unwrap();
    d.proxy.add(rule("checkpoint", &d, Fault::ProvisionedThroughputExceeded).always());

    // WHEN the task runs (the product's SDK settings: its retries give up)
    let out = tokio::task::block_in_place(|| batch_job(&d, &d.proxy.url, &param));
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    // THEN it exits 75 (may succeed later), the job failed, the lock free, a checkpoint kept
    assert_eq!(out.status.code(), Some(exit::RETRYABLE), "{said}");
    assert!(d.proxy.injected() >= 3, "{said}");
    assert_eq!(d.store.get_job(&d.job).await.unwrap().unwrap().state, JobState::Failed);
    assert!(lock_is_free(d.store.as_ref(), &d.target).await);
    assert!(d.store.checkpoint(&d.job).await.unwrap().is_some());
    let first = d.hub.requests(PAGE_READS);

    // WHEN the throttling is over and the task runs again
    d.proxy.clear();
    let out = tokio::task::block_in_place(|| batch_job(&d, &d.proxy.url, &param));

    // THEN it exits 0, having read only the pages after its checkpoint, and the store equals GitHub
    assert_eq!(out.status.code(), Some(exit::OK), "{}", String::from_utf8_lossy(&out.stdout));
    let second = d.hub.requests(PAGE_READS) - first;
    assert_eq!((first, second), (2, PAGES - 1), "pages read by the first run, then by the second");
    assert_eq!(d.store.get_job(&d.job).await.unwrap().unwrap().state, JobState::Succeeded);
    assert!(differences(d.store.as_ref(), &d.org).await.is_empty());
    assert!(lock_is_free(d.store.as_ref(), &d.target).await);
}

//! The integrity check from one check to the next: failed deliveries are
//! redelivered once, each check reads the hook's delivery log only back to the
//! previous check, and a run's lost completion is looked for back to 7 days
//! whatever older runs are stuck.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use octoscope::adapters::clock::ManualClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::adapters::local::LocalQueue;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::ApiTokens;
use octoscope::config::GitHubCredentials;
use octoscope::domain::GapKind;
use octoscope::ports::Tracked;
use octoscope::ports::store::*;
use octoscope::services::IngestService;
use octoscope::services::integrity::IntegrityService;
use octoscope::webhook::WebhookSecrets;
use octoscope_fakehub::{FakeHub, OrgSpec, WebhookSpec};

const LOG: &str = "GET /orgs/{org}/hooks/{hook}/deliveries";

/// A server on a SQLite store in `dir` taking the webhooks of `spec`: the
/// store, and the webhook's URL.
async fn serve(dir: &std::path::Path, spec: &WebhookSpec) -> (Arc<SqliteStore>, String) {
    let store = Arc::new(SqliteStore::open(&dir.join("s.db")).unwrap());
    let archive = Arc::new(SqliteArchive::open(&dir.join("a.db")).unwrap());
    let ingest = IngestService::new(
        store.clone(),
        archive,
        Arc::new(octoscope::adapters::clock::SystemClock),
        WebhookSecrets::parse(&spec.secret).unwrap(),
    );
    let app = api::router(AppState {
        ingest: Arc::new(ingest),
        store: store.clone(),
        search: Some(store.clone()),
        tokens: ApiTokens::default(),
        max_body_bytes: 25 << 20,
        notify: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (store, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_asks_once_and_reads_the_log_back_to_the_previous_check_only() {
    // GIVEN a server that received an org's history, a tenth of it lost
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 60, teams: 2, ..OrgSpec::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = WebhookSpec { drop_share: 0.1, concurrency: 4, ..WebhookSpec::default() };
    let (store, url) = serve(dir.path(), &spec).await;
    let sent = hub.send_webhooks(&url, &spec).await.unwrap();
    assert!(sent.events > 200 && !sent.dropped.is_empty(), "{} events, {} dropped", sent.events, sent.dropped.len());
    let delivered_before = store.stats().await.unwrap().deliveries["stored"];

    // WHEN checks run an hour, then two hours, after the deliveries
    let github = GitHubClient::new(GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().into())))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() + TimeDelta::hours(1)));
    let queue = Arc::new(LocalQueue::default());
    let github = Arc::new(github);
    let integrity =
        IntegrityService::new(store.clone(), github.clone(), github, queue, clock.clone(), Tracked::default());
    hub.reset_counters();
    let first = integrity.check(false).await.unwrap();

    // THEN the first check reads the whole log of the last 3 days and redelivers every lost delivery
    let log_pages = hub.requests(LOG);
    assert!(log_pages as usize >= sent.events / 100, "{log_pages} pages for {} deliveries", sent.events);
    assert_eq!(first.redelivered as usize, sent.dropped.len());
    let delivered_after = store.stats().await.unwrap().deliveries["stored"];
    assert_eq!(
        delivered_after - delivered_before,
        sent.dropped.len() as u64,
        "the redeliveries arrived and were stored"
    );

    // AND the next check reads one page (back to the previous check) and asks nothing again
    clock.set(Utc::now() + TimeDelta::hours(2));
    hub.reset_counters();
    let second = integrity.check(false).await.unwrap();
    assert_eq!(hub.requests(LOG), 1, "{:?}", hub.request_counts());
    assert_eq!(second.redelivered, 0);
}

/// Make `run` queued since `at`, with every job queued (as GitHub shows a run
/// no runner took yet).
fn queued(run: &mut octoscope_fakehub::WorkflowRun, at: chrono::DateTime<Utc>) {
    (run.status, run.conclusion, run.run_attempt) = ("queued".into(), None, 1);
    (run.created_at, run.run_started_at, run.updated_at) = (at, at, at);
    for j in &mut run.jobs {
        (j.status, j.conclusion, j.run_attempt) = ("queued".into(), None, 1);
        (j.created_at, j.started_at, j.completed_at) = (at, at, None);
        (j.runner_id, j.runner_name, j.runner_group_id, j.runner_group_name) = (None, None, None, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stuck_for_weeks_does_not_hide_a_newer_run_whose_completion_was_lost() {
    // GIVEN a repository whose history ended ten days ago, with one run queued on
    // GitHub for 30 days (stuck: no runner ever took it) and one queued 2 days ago
    let now = Utc::now();
    let spec = OrgSpec {
        repos: 1,
        pulls: 2,
        teams: 1,
        members: 3,
        branches: 1,
        runs: 4,
        deployments: 0,
        commits: 3,
        start: now - TimeDelta::days(40),
        days: 30,
        ..OrgSpec::default()
    };
    let hub = FakeHub::start(spec).await.unwrap();
    hub.update(|org| {
        let runs = &mut org.repos[0].runs;
        let last = runs.len() - 1;
        queued(&mut runs[0], now - TimeDelta::days(30));
        queued(&mut runs[last], now - TimeDelta::days(2));
    });
    let recent = hub.org().repos[0].runs.last().unwrap().id;
    // AND a server that received every webhook of it
    let dir = tempfile::tempdir().unwrap();
    let webhooks = WebhookSpec::default();
    let (store, url) = serve(dir.path(), &webhooks).await;
    let sent = hub.send_webhooks(&url, &webhooks).await.unwrap();
    assert!(sent.dropped.is_empty());
    let github = GitHubClient::new(GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().into())))
        .await
        .unwrap();
    let github = Arc::new(github);
    let clock = Arc::new(ManualClock::new(now + TimeDelta::hours(1)));
    let integrity = IntegrityService::new(
        store.clone(),
        github.clone(),
        github,
        Arc::new(LocalQueue::default()),
        clock.clone(),
        Tracked::default(),
    );
    // AND a check an hour later that found nothing missing (so the next one compares runs from then on)
    let first = integrity.check(false).await.unwrap();
    assert!(first.gaps.is_empty() && !first.verified.is_empty(), "{:?}", first.gaps);

    // WHEN the recent run completes on GitHub, its webhooks lost for good, and the next check runs
    hub.update(|org| {
        let run = org.repos[0].runs.last_mut().unwrap();
        let done = now + TimeDelta::minutes(90);
        (run.status, run.conclusion, run.updated_at) = ("completed".into(), Some("success".into()), done);
        for j in &mut run.jobs {
            (j.status, j.conclusion, j.completed_at) = ("completed".into(), Some("success".into()), Some(done));
        }
    });
    clock.set(now + TimeDelta::hours(2));
    let second = integrity.check(false).await.unwrap();

    // THEN its window reaches back to the recent run (the stuck one is past the 7-day
    // horizon and does not stop it), and the lost completion is a gap of the repository's runs
    let runs: Vec<_> = second.gaps.iter().filter(|g| g.kind == GapKind::WorkflowRuns).collect();
    assert_eq!(runs.len(), 1, "{:?}", second.gaps);
    assert!(runs[0].reason.contains(&recent.to_string()), "{}", runs[0].reason);
    let from = runs[0].watermark.expect("a window with a start");
    assert!((from - (now - TimeDelta::days(2))).num_seconds().abs() <= 1, "the window starts at {from}");
}

//! The integrity check's redelivery: failed deliveries are redelivered once,
//! and each check reads the hook's delivery log only back to the previous check.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use octoscope::adapters::clock::ManualClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::adapters::local::LocalQueue;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::ApiTokens;
use octoscope::config::GitHubCredentials;
use octoscope::ports::Tracked;
use octoscope::ports::store::*;
use octoscope::services::IngestService;
use octoscope::services::integrity::IntegrityService;
use octoscope::webhook::WebhookSecrets;
use octoscope_fakehub::{FakeHub, OrgSpec, WebhookSpec};

const LOG: &str = "GET /orgs/{org}/hooks/{hook}/deliveries";

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_asks_once_and_reads_the_log_back_to_the_previous_check_only() {
    // GIVEN a server that received an org's history, a tenth of it lost
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 60, teams: 2, ..OrgSpec::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let archive = Arc::new(SqliteArchive::open(&dir.path().join("a.db")).unwrap());
    let spec = WebhookSpec { drop_share: 0.1, concurrency: 4, ..WebhookSpec::default() };
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

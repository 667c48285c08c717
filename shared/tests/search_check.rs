//! The integrity check's comparison of the search index with the store
//! (shared/docs/search.md, "The index against the store"): a healthy system
//! shows no drift; documents removed from the index behind the store's back
//! and a stale one added are found as drift of exactly their scope; a dry
//! run finds it and repairs nothing; a check repairs it, the next finds
//! none, and search finds the documents again. On SQLite on disk through
//! the whole integrity check and `/api/integrity`; (features `opensearch`
//! and `dynamodb`) on OpenSearch (osmem-server) beside DynamoDB (moto).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use octoscope::adapters::clock::ManualClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::adapters::local::LocalQueue;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::{ApiTokens, GitHubCredentials};
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::IngestService;
use octoscope::services::integrity::IntegrityService;
use octoscope::services::search_check::SearchCheck;
use octoscope::webhook::WebhookSecrets;
use octoscope_fakehub::{FakeHub, OrgSpec, WebhookSpec};
use serde_json::Value;
use tower::ServiceExt;

async fn keys(index: &dyn SearchIndex, q: &str) -> Vec<String> {
    let q = SearchQuery::parse(q).unwrap();
    let mut page = PageRequest::first(100);
    let mut keys = Vec::new();
    loop {
        let found = index.search(&q, &page).await.unwrap();
        keys.extend(found.items.into_iter().map(|h| h.key));
        match found.next_cursor {
            Some(c) => page = PageRequest { cursor: Some(c), ..page },
            None => return keys,
        }
    }
}

/// A stale document: an entity the store does not hold, in `repo`.
fn stale(repo: &str) -> SearchDoc {
    SearchDoc {
        key: format!("pr:{repo}#99999"),
        kind: DocKind::Pr,
        repo: Some(RepoName::parse(repo).unwrap()),
        author: Some("ghost".into()),
        state: Some("open".into()),
        created_at: None,
        version: "2020-01-01T00:00:00.000Z".into(),
        title: "A pull request nobody made".into(),
        body: String::new(),
        extra: String::new(),
    }
}

fn scopes(c: &SearchComparison) -> Vec<(DocKind, &str)> {
    c.drift.iter().map(|d| (d.kind, d.repo.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_integrity_check_finds_and_repairs_search_drift_on_sqlite() {
    // GIVEN a store fed by an organisation's webhooks (its index written by the store's own triggers)
    let hub =
        FakeHub::start(OrgSpec { repos: 2, pulls: 12, teams: 2, commits: 5, ..OrgSpec::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let archive = Arc::new(SqliteArchive::open(&dir.path().join("a.db")).unwrap());
    let spec = WebhookSpec { drop_share: 0.0, concurrency: 4, ..WebhookSpec::default() };
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
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    hub.send_webhooks(&url, &spec).await.unwrap();
    let github = GitHubClient::new(GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().into())))
        .await
        .unwrap();
    let github = Arc::new(github);
    let clock = Arc::new(ManualClock::new(Utc::now() + TimeDelta::hours(1)));
    let integrity = IntegrityService::new(
        store.clone(),
        github.clone(),
        github,
        Arc::new(LocalQueue::default()),
        clock.clone(),
        Tracked::default(),
    )
    .with_search(SearchCheck::new(store.clone(), store.clone(), store.clone()));

    // WHEN checked THEN the index holds what the store's entities make: no drift
    let healthy = integrity.check(false).await.unwrap().search.expect("a search comparison");
    assert_eq!(healthy.drift, [], "{healthy:?}");
    assert!(healthy.store_documents > 30 && healthy.scopes >= 5, "{healthy:?}");
    assert_eq!(
        (healthy.store_documents, healthy.repaired, healthy.error.as_deref()),
        (healthy.index_documents, false, None)
    );

    // GIVEN two pull requests' documents gone from the index behind the store's back, and a stale one added
    let pulls = keys(store.as_ref(), "type:pr").await;
    let victim = pulls[0].clone();
    let repo = victim.trim_start_matches("pr:").split('#').next().unwrap().to_owned();
    let in_repo = keys(store.as_ref(), &format!("type:pr repo:{repo}")).await;
    let gone: Vec<String> = in_repo.iter().take(2).cloned().collect();
    SearchIndex::delete(store.as_ref(), &gone).await.unwrap();
    SearchIndex::index(store.as_ref(), &[stale(&repo)]).await.unwrap();
    assert_eq!(keys(store.as_ref(), &format!("type:pr repo:{repo}")).await.len(), in_repo.len() - 1);

    // WHEN a dry run checks THEN it finds the drift of exactly that scope and repairs nothing
    clock.set(Utc::now() + TimeDelta::hours(2));
    let dry = integrity.check(true).await.unwrap().search.unwrap();
    assert_eq!(scopes(&dry), [(DocKind::Pr, repo.as_str())], "{dry:?}");
    let d = &dry.drift[0];
    assert_eq!((d.store_count, d.index_count), (in_repo.len() as u64, in_repo.len() as u64 - 1));
    assert!(!dry.repaired && dry.rewritten == 0 && dry.removed == 0, "{dry:?}");
    clock.set(Utc::now() + TimeDelta::hours(3));
    assert_eq!(integrity.check(true).await.unwrap().search.unwrap().drift, dry.drift, "still there");

    // WHEN a check runs THEN it reindexes that scope: every document written again, the stale one removed
    clock.set(Utc::now() + TimeDelta::hours(4));
    let repaired = integrity.check(false).await.unwrap().search.unwrap();
    assert_eq!(scopes(&repaired), [(DocKind::Pr, repo.as_str())]);
    assert!(repaired.repaired, "{repaired:?}");
    assert_eq!((repaired.rewritten, repaired.removed), (in_repo.len() as u64, 1));

    // AND the next check finds no drift, and search finds the documents again (and not the stale one)
    clock.set(Utc::now() + TimeDelta::hours(5));
    let after = integrity.check(false).await.unwrap().search.unwrap();
    assert_eq!(after.drift, [], "{after:?}");
    let mut found = keys(store.as_ref(), &format!("type:pr repo:{repo}")).await;
    let mut want = in_repo.clone();
    found.sort();
    want.sort();
    assert_eq!(found, want);
    assert!(keys(store.as_ref(), "nobody made").await.is_empty());

    // AND /api/integrity shows each check's comparison: the newest clean, the repair before it
    let response = app.oneshot(Request::get("/api/integrity").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let checks = body["items"].as_array().unwrap();
    assert_eq!(body["search"], checks[0]["search"], "the latest comparison, on top");
    assert_eq!(checks[0]["search"]["drift"], serde_json::json!([]));
    let drift = &checks[1]["search"]["drift"][0];
    assert_eq!((drift["type"].as_str(), drift["repo"].as_str()), (Some("pr"), Some(repo.as_str())), "{body}");
    assert_eq!(drift["index_count"].as_u64(), Some(in_repo.len() as u64 - 1));
    assert_eq!(checks[1]["search"]["repaired"], serde_json::json!(true));
    assert_eq!(checks[2]["search"]["repaired"], serde_json::json!(false), "the dry run");
    assert_eq!(checks[2]["dry_run"], serde_json::json!(true));
}

#[tokio::test]
async fn an_unreadable_index_is_reported_and_the_check_goes_on() {
    // GIVEN an index that cannot be read
    struct Down;
    #[async_trait::async_trait]
    impl IndexCensus for Down {
        async fn census(&self) -> Result<Vec<ScopeCount>, SearchError> {
            Err(SearchError::Unavailable(anyhow::anyhow!("connection refused")))
        }
        async fn scope_keys(&self, _: &IndexScope) -> Result<Vec<String>, SearchError> {
            Err(SearchError::Unavailable(anyhow::anyhow!("connection refused")))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let check = SearchCheck::new(store.clone(), Arc::new(Down), store.clone());
    // WHEN compared THEN the comparison says why, and holds no drift it could not know
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let c = check.compare(at, false).await;
    assert!(c.error.as_deref().is_some_and(|e| e.contains("connection refused")), "{c:?}");
    assert_eq!((c.drift.len(), c.repaired), (0, false));
}

#[cfg(all(feature = "opensearch", feature = "dynamodb"))]
mod aws {
    use super::*;
    use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
    use octoscope::adapters::clock::SystemClock;
    use octoscope::adapters::opensearch::OpenSearchIndex;
    use octoscope::services::indexer::IndexerService;
    use octoscope::services::search_check::ScannedStore;
    use octoscope_testkit::moto::{MotoServer, unique};
    use octoscope_testkit::osmem::OsmemServer;

    fn at(min: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn pull(repo: &str, n: u64) -> Change {
        Change::pull_request(PullRequest {
            repo: RepoName::parse(repo).unwrap(),
            number: n,
            id: Some(n as i64),
            title: format!("Make the rate limiter faster, part {n}"),
            state: PrState::Open,
            draft: false,
            author: Some(format!("dev{}", n % 3)),
            created_at: at(n as i64),
            updated_at: at(n as i64),
            closed_at: None,
            merged_at: None,
            additions: None,
            deletions: None,
            changed_files: None,
            commits: None,
            labels: vec![],
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: None,
            head_sha: None,
            body: None,
        })
    }

    fn member(login: &str, present: bool, min: i64) -> Change {
        Change::OrgMember {
            org: "acme".into(),
            member: Membership { login: login.into(), role: None, present, version: at(min) },
        }
    }

    /// One request to a plain-HTTP URL, as an operator (or a fault) would
    /// touch the index: no client library needed for it.
    async fn http(method: &str, url: &str, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    async fn delete_over_http(url: &str, index: &str, key: &str) {
        let key: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let response = http("DELETE", &format!("{url}/{index}/_doc/{key}?refresh=true"), "").await;
        assert!(response.contains("\"deleted\""), "{response}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_comparison_finds_and_repairs_drift_on_opensearch_beside_dynamodb() {
        // GIVEN a table (pull requests in two repositories, a review, a team, a deleted team,
        // people in and out of the organisation, a deleted repository) and its index, reindexed from it
        let sdk = MotoServer::shared().sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let table = unique("octoscope");
        create_table(&client, &table).await.unwrap();
        let store = Arc::new(DynamoStore::new(client, &table));
        let mut changes: Vec<Change> = (1..=8).map(|n| pull("acme/api", n)).collect();
        changes.extend((1..=3).map(|n| pull("acme/web", n)));
        changes.push(Change::Review(Review {
            repo: RepoName::parse("acme/api").unwrap(),
            pr_number: 1,
            id: 77,
            author: Some("alice".into()),
            state: ReviewState::Approved,
            submitted_at: Some(at(30)),
            commit_id: None,
            body: None,
        }));
        for (slug, deleted) in [("core", false), ("old", true)] {
            changes.push(Change::Team(Team {
                org: "acme".into(),
                slug: slug.into(),
                id: None,
                name: slug.into(),
                description: None,
                privacy: None,
                parent_slug: None,
                deleted,
                version: at(40),
            }));
        }
        changes.extend([member("alice", true, 41), member("bob", true, 42), member("carol", false, 43)]);
        store.apply_changes(&changes).await.unwrap();
        let osmem = OsmemServer::shared();
        let name = unique("octoscope-search");
        let index = Arc::new(OpenSearchIndex::new(&osmem.url, &name).unwrap().refreshing());
        index.ensure_index().await.unwrap();
        IndexerService::new(store.clone(), index.clone())
            .reindex(store.as_ref(), store.as_ref(), &SystemClock)
            .await
            .unwrap();
        let scanned = Arc::new(ScannedStore::new(store.clone(), store.clone(), index.clone(), index.clone()));
        let check = SearchCheck::new(scanned.clone(), index.clone(), scanned);

        // WHEN compared THEN no drift: the same documents on both sides (people in no organisation and
        // deleted teams on neither)
        let healthy = check.compare(at(100), false).await;
        assert_eq!((healthy.drift.as_slice(), healthy.error.as_deref()), (&[][..], None), "{healthy:?}");
        // 11 pull requests, 1 review, 1 team, 2 people
        assert_eq!((healthy.store_documents, healthy.index_documents), (15, 15), "{healthy:?}");

        // GIVEN two documents deleted from the index over its HTTP API, and a stale one indexed.
        // (A delete leaves a tombstone newer than the document for `index.gc_deletes`, 60 s by
        // default, which refuses the document at its own version until then: drift found that
        // soon is repaired by the check after. Here tombstones go at once.)
        let settings = format!("{}/{name}/_settings", osmem.url);
        assert!(http("PUT", &settings, r#"{"index":{"gc_deletes":"0s"}}"#).await.contains("acknowledged"));
        for key in ["pr:acme/api#3", "pr:acme/api#5"] {
            delete_over_http(&osmem.url, &name, key).await;
        }
        index.index(&[stale("acme/api")]).await.unwrap();

        // WHEN a dry run compares THEN exactly that scope drifts, nothing is repaired
        let dry = check.compare(at(101), true).await;
        assert_eq!(scopes(&dry), [(DocKind::Pr, "acme/api")], "{dry:?}");
        assert_eq!((dry.drift[0].store_count, dry.drift[0].index_count, dry.repaired), (8, 7, false));
        assert_eq!(check.compare(at(102), true).await.drift, dry.drift);

        // WHEN compared for real THEN the scope is reindexed and the stale document removed
        let repaired = check.compare(at(103), false).await;
        assert_eq!(scopes(&repaired), [(DocKind::Pr, "acme/api")]);
        assert!(repaired.repaired, "{repaired:?}");
        assert_eq!((repaired.rewritten, repaired.removed), (8, 1));

        // AND the next comparison finds none, and search finds the documents again
        let after = check.compare(at(104), false).await;
        assert_eq!(after.drift, [], "{after:?}");
        let mut found = keys(index.as_ref(), "type:pr repo:acme/api").await;
        found.sort();
        let mut want: Vec<String> = (1..=8).map(|n| format!("pr:acme/api#{n}")).collect();
        want.sort();
        assert_eq!(found, want);

        // AND with the index unreachable the comparison reports it, retryably, without failing
        let down = Arc::new(OpenSearchIndex::new("http://127.0.0.1:9", &name).unwrap());
        let scanned = Arc::new(ScannedStore::new(store.clone(), store.clone(), down.clone(), down.clone()));
        let unreachable = SearchCheck::new(scanned.clone(), down, scanned).compare(at(105), false).await;
        assert!(unreachable.error.is_some() && unreachable.drift.is_empty(), "{unreachable:?}");
    }
}

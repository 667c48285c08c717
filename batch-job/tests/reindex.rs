//! The reindex job on moto and osmem-server: what the table holds (written
//! before search existed, so no stream ever carried it) is walked into the
//! search index; a run stopped part way leaves its checkpoint and the next
//! run resumes there; the binary (`OCTOSCOPE_JOB_ID=reindex`) does the same
//! end to end and refuses to start without a search index configured.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::opensearch::OpenSearchIndex;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::indexer::{IndexerService, REINDEX_JOB};
use octoscope_batch_job::exit;
use octoscope_testkit::moto::{MotoServer, unique};
use octoscope_testkit::osmem::OsmemServer;

const BIN: &str = env!("CARGO_BIN_EXE_batch-job");
/// Pull requests in the table of the resume test, read in pages of at most
/// [`PAGE`] there (a page of the product's is 500; a store may serve fewer).
const PULLS: u64 = 240;
const PAGE: usize = 100;

fn pull(n: u64) -> Change {
    let at = Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap() + chrono::Duration::minutes(n as i64);
    Change::pull_request(PullRequest {
        repo: RepoName::parse(&format!("acme/service-{}", n % 3)).unwrap(),
        number: n,
        id: Some(n as i64),
        title: format!("Make the rate limiter faster, part {n}"),
        state: PrState::Open,
        draft: false,
        author: Some(format!("dev{}", n % 7)),
        created_at: at,
        updated_at: at,
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
        head_ref: Some(format!("limiter-{n}")),
        head_sha: None,
        body: Some(format!("Backoff grows with each retry ({n}).")),
    })
}

/// A table holding `pulls` pull requests and a review, written straight to
/// the store (no stream consumer ran), on a moto server of the test's own
/// ([`MotoServer::start`] says why), and an empty index.
async fn table(pulls: u64) -> (MotoServer, Arc<DynamoStore>, String, String, OpenSearchIndex) {
    let moto = MotoServer::start().unwrap();
    let sdk = moto.sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("octoscope");
    create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(client, &table));
    let mut changes: Vec<Change> = (1..=pulls).map(pull).collect();
    changes.push(Change::Review(Review {
        repo: RepoName::parse("acme/service-1").unwrap(),
        pr_number: 1,
        id: 99,
        author: Some("alice".into()),
        state: ReviewState::Approved,
        submitted_at: Some(Utc.with_ymd_and_hms(2026, 10, 2, 9, 0, 0).unwrap()),
        commit_id: None,
        body: None,
    }));
    store.apply_changes(&changes).await.unwrap();
    let name = unique("octoscope-search");
    let index = OpenSearchIndex::new(&OsmemServer::shared().url, &name).unwrap().refreshing();
    index.ensure_index().await.unwrap();
    (moto, store, table, name, index)
}

async fn total(index: &dyn SearchIndex, q: &str) -> u64 {
    index.search(&SearchQuery::parse(q).unwrap(), &PageRequest::first(1)).await.unwrap().total
}

/// The store's pages, at most [`PAGE`] items each, failing once after
/// `pages` of them (a task stopped part way).
struct StopsAfter {
    store: Arc<DynamoStore>,
    pages: std::sync::Mutex<u32>,
}

#[async_trait]
impl SearchableEntities for StopsAfter {
    async fn searchable_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<String>), StoreError> {
        {
            let mut left = self.pages.lock().unwrap();
            if *left == 0 {
                return Err(StoreError::Unavailable(anyhow::anyhow!("the task was stopped")));
            }
            *left -= 1;
        }
        self.store.searchable_page(after, limit.min(PAGE)).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reindex_stopped_part_way_resumes_from_its_checkpoint_and_indexes_everything() {
    let (_moto, store, _, _, index) = table(PULLS).await;
    let index = Arc::new(index);
    let service = IndexerService::new(store.clone(), index.clone());
    // GIVEN a reindex stopped after its first page
    let stopping = StopsAfter { store: store.clone(), pages: std::sync::Mutex::new(1) };
    let code = octoscope_batch_job::reindex(&service, &stopping, store.as_ref(), &SystemClock).await;
    // THEN it ends retryable, with part of the table indexed and its checkpoint saved
    assert_eq!(code, exit::RETRYABLE);
    let part = total(index.as_ref(), "type:pr").await;
    assert!(part > 0 && part < PULLS, "one page of the table: {part}");
    assert!(store.checkpoint(REINDEX_JOB).await.unwrap().is_some(), "where it got to is saved");
    // WHEN it runs again
    let done = service.reindex(store.as_ref(), store.as_ref(), &SystemClock).await.unwrap();
    // THEN it resumed, and every pull request and the review are searchable
    assert!(done.resumed, "{done:?}");
    assert_eq!(total(index.as_ref(), "type:pr").await, PULLS);
    assert_eq!(total(index.as_ref(), "type:pr limiter repo:acme/service-1").await, PULLS / 3);
    // AND each pull request's body, kept on an item of its own, is searched
    assert_eq!(total(index.as_ref(), "backoff type:pr").await, PULLS);
    let review = index.search(&SearchQuery::parse("type:review").unwrap(), &PageRequest::first(5)).await.unwrap();
    assert_eq!(review.items.len(), 1);
    assert_eq!(review.items[0].title, "Make the rate limiter faster, part 1", "titled by its pull request");
    // AND the checkpoint is cleared: the next reindex starts from the beginning
    assert_eq!(store.checkpoint(REINDEX_JOB).await.unwrap(), None);
    let again = service.reindex(store.as_ref(), store.as_ref(), &SystemClock).await.unwrap();
    assert!(!again.resumed && again.entities >= PULLS, "{again:?}");
    assert_eq!(total(index.as_ref(), "type:pr").await, PULLS, "a second reindex changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_batch_job_reindexes_when_asked_and_refuses_without_a_search_index() {
    let (moto, _, table, name, index) = table(60).await;
    let run = |env: Vec<(&'static str, String)>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.envs(moto.env())
            .env("OCTOSCOPE_JOB_ID", "reindex")
            .env("GITHUB_TOKEN_PARAM", "/octoscope/github-token")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let table_env = ("OCTOSCOPE_TABLE", table);
    // WHEN the job runs without a search index configured THEN it is refused, naming what is missing
    let out = run(vec![table_env.clone()]);
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", String::from_utf8_lossy(&out.stderr));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("OCTOSCOPE_SEARCH_DOMAIN"), "{said}");
    // WHEN it runs with the index THEN it exits 0 and the table is searchable
    let out = run(vec![
        table_env,
        ("OCTOSCOPE_SEARCH_ENDPOINT", OsmemServer::shared().url.clone()),
        ("OCTOSCOPE_SEARCH_INDEX", name),
    ]);
    assert_eq!(out.status.code(), Some(exit::OK), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(total(&index, "type:pr").await, 60);
}

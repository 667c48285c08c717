//! The indexer end to end, on moto and osmem-server: GitHub's example
//! deliveries through the webhook's Router into DynamoDB (moto), the table's
//! stream read as the event source mapping reads it (GetShardIterator /
//! GetRecords, handed over as a Lambda `DynamoDbEvent`), the indexer's
//! handler into OpenSearch (osmem-server). The documents it indexes are
//! compared with those the SQLite store's own triggers write for the same
//! deliveries; a replayed batch, a poisoned record and an unreachable index
//! behave as `functions/indexer/src/lib.rs` says.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::opensearch::OpenSearchIndex;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{WebhookState, webhook_router};
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::IngestService;
use octoscope::services::indexer::IndexerService;
use octoscope::webhook::{WebhookSecrets, sign};
use octoscope_indexer::handle;
use octoscope_testkit::moto::{MotoServer, StreamReader, unique};
use octoscope_testkit::osmem::OsmemServer;
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &str = "indexer-test-secret";

/// The deliveries, in order: every searchable kind, a close, a rename.
const DELIVERIES: [(&str, &str); 9] = [
    ("repository", "created.payload.json"),
    ("pull_request", "opened.payload.json"),
    ("pull_request_review", "submitted.payload.json"),
    ("push", "payload.json"),
    ("push", "with-new-branch.payload.json"),
    ("organization", "member_added.payload.json"),
    ("team", "created.payload.json"),
    ("pull_request", "closed.payload.json"),
    ("repository", "renamed.payload.json"),
];

struct World {
    /// The webhook's Router over DynamoDB, and over SQLite (whose triggers index).
    dynamo_app: axum::Router,
    sqlite_app: axum::Router,
    sqlite: Arc<SqliteStore>,
    stream: StreamReader,
    service: IndexerService,
    index: Arc<OpenSearchIndex>,
    table_store: Arc<DynamoStore>,
    _dirs: Vec<tempfile::TempDir>,
}

fn app(store: Arc<dyn Store>, archive: Arc<dyn RawArchive>) -> axum::Router {
    let ingest = IngestService::new(store, archive, Arc::new(SystemClock), WebhookSecrets::parse(SECRET).unwrap());
    webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: 25 * 1024 * 1024 })
}

fn archive(dirs: &mut Vec<tempfile::TempDir>) -> Arc<SqliteArchive> {
    let dir = tempfile::tempdir().unwrap();
    let archive = Arc::new(SqliteArchive::open(&dir.path().join("archive.db")).unwrap());
    dirs.push(dir);
    archive
}

async fn index_on(url: &str) -> Arc<OpenSearchIndex> {
    let index = OpenSearchIndex::new(url, &unique("octoscope-search")).unwrap().refreshing();
    Arc::new(index)
}

async fn world() -> World {
    let sdk = MotoServer::shared().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("octoscope");
    create_table(&client, &table).await.unwrap();
    let mut dirs = Vec::new();
    let webhook_store = Arc::new(DynamoStore::new(client.clone(), &table).with_stream_derivation());
    let dynamo_app = app(webhook_store, archive(&mut dirs));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
    dirs.push(dir);
    let sqlite_app = app(sqlite.clone(), archive(&mut dirs));
    let index = index_on(&OsmemServer::shared().url).await;
    index.ensure_index().await.unwrap();
    let table_store = Arc::new(DynamoStore::new(client, &table));
    World {
        dynamo_app,
        sqlite_app,
        sqlite,
        stream: StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap(),
        service: IndexerService::new(table_store.clone(), index.clone()),
        index,
        table_store,
        _dirs: dirs,
    }
}

async fn deliver(app: &axum::Router, event: &str, name: &str, n: usize) {
    let body = octoscope_testkit::fixture(event, name);
    let request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", format!("00000000-0000-4000-8000-{n:012}"))
        .header("x-github-hook-id", "7")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{event}/{name}");
}

/// Every record of the stream since the last call, as one `DynamoDbEvent` each batch of 100.
async fn batches(stream: &mut StreamReader) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let batch = stream.next_batch(100).await.unwrap();
        if batch["Records"].as_array().is_none_or(|r| r.is_empty()) {
            return out;
        }
        out.push(batch);
    }
}

fn event(batch: &Value) -> Event {
    serde_json::from_value(batch.clone()).unwrap()
}

/// Everything an index holds, as comparable rows (key, kind, repo, author, state, created, title).
async fn everything(index: &dyn SearchIndex) -> Vec<(String, String, String, String, String, String, String)> {
    let mut rows = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let found = index.search(&SearchQuery::parse("").unwrap(), &page).await.unwrap();
        for h in found.items {
            rows.push((
                h.key,
                h.kind.as_str().to_owned(),
                h.repo.map(|r| r.to_string()).unwrap_or_default(),
                h.author.unwrap_or_default(),
                h.state.unwrap_or_default(),
                h.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                h.title,
            ));
        }
        match found.next_cursor {
            Some(c) => page = PageRequest { cursor: Some(c), ..PageRequest::first(100) },
            None => break,
        }
    }
    rows.sort();
    rows
}

async fn keys_matching(index: &dyn SearchIndex, q: &str) -> Vec<String> {
    let found = index.search(&SearchQuery::parse(q).unwrap(), &PageRequest::first(100)).await.unwrap();
    let mut keys: Vec<String> = found.items.into_iter().map(|h| h.key).collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_reach_the_index_through_the_stream_as_the_sqlite_triggers_index_them() {
    // GIVEN GitHub's example deliveries of every searchable kind, through the webhook into DynamoDB and into SQLite
    let mut w = world().await;
    for (n, (event, name)) in DELIVERIES.iter().enumerate() {
        deliver(&w.dynamo_app, event, name, n).await;
        deliver(&w.sqlite_app, event, name, n).await;
    }
    // WHEN the table's stream is fed to the indexer in batches
    let batches = batches(&mut w.stream).await;
    assert!(!batches.is_empty(), "the deliveries wrote stream records");
    for batch in &batches {
        let response = handle(&w.service, event(batch)).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    // THEN OpenSearch holds exactly the documents the SQLite store's triggers wrote
    let indexed = everything(w.index.as_ref()).await;
    let expected = everything(w.sqlite.as_ref()).await;
    assert!(indexed.len() >= 6, "pull request, review, commit, repository, team, person: {indexed:#?}");
    for kind in ["pr", "review", "commit", "repo", "team", "person"] {
        assert!(indexed.iter().any(|r| r.1 == kind), "a {kind} document: {indexed:#?}");
    }
    assert_eq!(indexed, expected);
    // AND searches find the same documents on both (a pull request's body included)
    let body_words = "\"pretty simple change\" type:pr";
    assert!(!keys_matching(w.sqlite.as_ref(), body_words).await.is_empty(), "the example pull request's body");
    for q in ["type:pr", "is:closed", "type:commit", "type:repo", "type:team", "type:person", "update", body_words] {
        assert_eq!(keys_matching(w.index.as_ref(), q).await, keys_matching(w.sqlite.as_ref(), q).await, "{q}");
    }

    // WHEN every batch is delivered again (a replay after a retry) THEN nothing fails and nothing changes
    for batch in &batches {
        let response = handle(&w.service, event(batch)).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert_eq!(everything(w.index.as_ref()).await, expected);

    // WHEN the first half of the records arrives again after the rest (out of order)
    // THEN no document goes back to an older version
    let records: Vec<Value> = batches.iter().flat_map(|b| b["Records"].as_array().unwrap().clone()).collect();
    let late = json!({"Records": records[..records.len() / 2]});
    assert!(handle(&w.service, event(&late)).await.batch_item_failures.is_empty());
    assert_eq!(everything(w.index.as_ref()).await, expected);
    let _ = &w.table_store;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poisoned_record_is_reported_and_the_records_before_it_are_indexed() {
    let mut w = world().await;
    deliver(&w.dynamo_app, "repository", "created.payload.json", 1).await;
    deliver(&w.dynamo_app, "pull_request", "opened.payload.json", 2).await;
    let records: Vec<Value> =
        batches(&mut w.stream).await.iter().flat_map(|b| b["Records"].as_array().unwrap().clone()).collect();
    let pull = records
        .iter()
        .position(|r| r["dynamodb"]["NewImage"]["entity"]["S"] == "pull_request")
        .expect("a pull request record");
    // GIVEN a batch where the pull request's record lost its title (an item no writer of this code makes)
    let mut poisoned = records.clone();
    poisoned[pull]["dynamodb"]["NewImage"].as_object_mut().unwrap().remove("title");
    let bad_sequence = poisoned[pull]["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned();
    // WHEN the indexer handles it
    let response = handle(&w.service, event(&json!({"Records": poisoned}))).await;
    // THEN exactly that record is reported (the mapping retries from it, then sets it aside)
    let reported: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(reported, [Some(bad_sequence)]);
    // AND the repositories whose records came before it are searchable; the pull request is not.
    // (The pull request's delivery also writes its repository, whose record may come before or
    // after the pull request's: the stream orders records per item, not across items.)
    let repos_before: std::collections::HashSet<&Value> = records[..pull]
        .iter()
        .filter(|r| r["dynamodb"]["NewImage"]["entity"]["S"] == "repository")
        .map(|r| &r["dynamodb"]["Keys"])
        .collect();
    assert!(!repos_before.is_empty(), "the repository delivery's record comes first");
    assert_eq!(keys_matching(w.index.as_ref(), "type:repo").await.len(), repos_before.len());
    assert!(keys_matching(w.index.as_ref(), "type:pr").await.is_empty());
    // WHEN the records after it arrive (it set aside) THEN they are indexed
    let rest = json!({"Records": records[pull + 1..]});
    assert!(handle(&w.service, event(&rest)).await.batch_item_failures.is_empty());
    // AND the intact record, once it arrives, indexes the pull request
    let intact = json!({"Records": [records[pull].clone()]});
    assert!(handle(&w.service, event(&intact)).await.batch_item_failures.is_empty());
    assert_eq!(keys_matching(w.index.as_ref(), "type:pr").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_index_fails_the_whole_batch_from_its_first_record() {
    let mut w = world().await;
    deliver(&w.dynamo_app, "pull_request", "opened.payload.json", 1).await;
    let batch = batches(&mut w.stream).await.remove(0);
    // GIVEN an index nobody listens on
    let gone = index_on("http://127.0.0.1:9").await;
    let service = IndexerService::new(w.table_store.clone(), gone);
    // WHEN the batch is handled THEN its first record is reported: the whole batch is tried again
    let response = handle(&service, event(&batch)).await;
    let first = batch["Records"][0]["dynamodb"]["SequenceNumber"].as_str().map(str::to_owned);
    let reported: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(reported, [first]);
    // AND the same batch, once the index is back, is indexed
    assert!(handle(&w.service, event(&batch)).await.batch_item_failures.is_empty());
    assert_eq!(keys_matching(w.index.as_ref(), "type:pr").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_is_resolved_to_its_endpoint_by_name() {
    use octoscope::adapters::opensearch::endpoint;
    use octoscope::config::aws::SearchEndpoint;
    // GIVEN a domain on the OpenSearch Service control plane (moto)
    let sdk = MotoServer::shared().sdk_config().await;
    let name = format!("s{}", &unique("d")[2..]);
    let created =
        aws_sdk_opensearch::Client::new(&sdk).create_domain().domain_name(&name).send().await.expect("CreateDomain");
    let host =
        created.domain_status().and_then(|s| s.endpoint()).expect("moto gives the domain an endpoint").to_owned();
    // WHEN the indexer's configuration names it THEN its endpoint is found, as https
    let url = endpoint(&sdk, &SearchEndpoint::Domain(name)).await.unwrap();
    assert_eq!(url, format!("https://{}", host.trim_start_matches("https://")));
    // AND a domain that does not exist is an error naming it
    let err = endpoint(&sdk, &SearchEndpoint::Domain("missing-domain".into())).await.unwrap_err();
    assert!(format!("{:#}", anyhow_chain(&err)).contains("missing-domain"), "{err:?}");
    // AND an endpoint given directly is taken as it is
    let direct = SearchEndpoint::Url("https://search.example.com".into());
    assert_eq!(endpoint(&sdk, &direct).await.unwrap(), "https://search.example.com");
}

fn anyhow_chain(e: &dyn std::error::Error) -> String {
    octoscope::error::error_chain(e)
}

//! The webhook function end to end on moto: a real API Gateway HTTP API (v2)
//! event, through lambda_http's adapter (what `lambda_http::run` does with
//! each invocation), into DynamoDB and the raw archive (a Firehose delivery
//! stream writing to S3), with the secret from SSM; then `replay` from the
//! batched objects. Delivery listings and counts are read after the table's
//! stream has gone through the ledger-stream handler ([`settle`]), as the
//! stream's event source mapping does in AWS.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::aws::s3_batched::BatchedS3Archive;
use octoscope::config::aws::WebhookConfig;
use octoscope::domain::RepoName;
use octoscope::ports::store::*;
use octoscope::ports::{DeliveryFilter, PageRequest, RawArchive};
use octoscope_testkit::moto::{MotoServer, StreamReader, archive_stream, secure_parameter, unique};
use octoscope_webhook::{Clients, app};
use serde_json::{Value, json};

const SECRET: &str = "a-webhook-secret-for-the-lambda-tests";
const FIXTURE: &str = include_str!("fixtures/apigw-v2-post-webhook.json");

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

/// Where the archive stream writes in the bucket (Terraform's prefix).
const PREFIX: &str = "batched/";

/// A table, a bucket (unless `bucket` is false: the name only), the archive's
/// Firehose stream into it, and the secret's parameter; the function's config
/// over them, and the bucket's name.
async fn resources(sdk: &SdkConfig, bucket: bool) -> (WebhookConfig, String) {
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &table).await.unwrap();
    let bucket_name = unique("octoscope-archive");
    if bucket {
        s3(sdk).create_bucket().bucket(&bucket_name).send().await.unwrap();
    }
    let stream = archive_stream(sdk, &bucket_name, PREFIX).await.unwrap();
    let param = secure_parameter(sdk, "webhook-secret", SECRET).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table),
        ("OCTOSCOPE_ARCHIVE_STREAM", stream),
        ("GITHUB_WEBHOOK_SECRET_PARAM", param),
    ]);
    (WebhookConfig::load(|k| env.get(k).cloned()).unwrap(), bucket_name)
}

/// The function started over fresh resources (see `resources`), its store,
/// the example pull_request body and a fresh delivery id for it.
struct Started {
    sdk: SdkConfig,
    bucket: String,
    app: Router,
    store: DynamoStore,
    stream: StreamReader,
    body: Vec<u8>,
    guid: String,
}

async fn started(bucket: bool) -> Started {
    let sdk = aws().await;
    let (config, bucket) = resources(&sdk, bucket).await;
    let app = app(&config, Clients::new(&sdk)).await.unwrap();
    let store = store(&sdk, &config);
    let stream = reader(&config).await;
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    Started { sdk, bucket, app, store, stream, body, guid: uuid::Uuid::new_v4().to_string() }
}

fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

fn store(sdk: &SdkConfig, config: &WebhookConfig) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table)
}

/// The fixture event carrying `body`, signed with `secret`, as delivery `guid`.
fn event(body: &[u8], secret: &str, guid: &str) -> Value {
    event_of("pull_request", body, secret, guid)
}

fn event_of(name: &str, body: &[u8], secret: &str, guid: &str) -> Value {
    let mut e: Value = serde_json::from_str(FIXTURE).unwrap();
    e["headers"]["x-github-event"] = json!(name);
    e["body"] = json!(String::from_utf8(body.to_vec()).unwrap());
    e["headers"]["content-length"] = json!(body.len().to_string());
    e["headers"]["x-github-delivery"] = json!(guid);
    e["headers"]["x-hub-signature-256"] = json!(octoscope_testkit::sign(secret, body));
    e
}

/// One invocation, as the Lambda runtime makes it; the function's answer as JSON.
async fn invoke(app: &Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let mut adapter = Adapter::from(app.clone());
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await.unwrap();
    serde_json::to_value(response).unwrap()
}

fn status_and_body(response: &Value) -> (u64, Value) {
    let body = response["body"].as_str().unwrap_or("null");
    (response["statusCode"].as_u64().unwrap(), serde_json::from_str(body).unwrap_or(json!(body)))
}

/// The archive bucket's object keys (none when it does not exist).
async fn archived(sdk: &SdkConfig, bucket: &str) -> Vec<String> {
    let Ok(out) = s3(sdk).list_objects_v2().bucket(bucket).send().await else { return Vec::new() };
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

/// The archive as replay reads it: the batched objects in the bucket.
fn batched(sdk: &SdkConfig, bucket: &str) -> BatchedS3Archive {
    BatchedS3Archive::new(s3(sdk), bucket, PREFIX)
}

/// The table's stream, read from its beginning.
async fn reader(config: &WebhookConfig) -> StreamReader {
    StreamReader::of_table(&MotoServer::shared().endpoint, &config.table).await.unwrap()
}

/// Every change of the table's stream since the last call, through the
/// ledger-stream handler in batches of up to 100 (its event source mapping's).
async fn settle(stream: &mut StreamReader, store: &DynamoStore) {
    loop {
        let event: Event = serde_json::from_value(stream.next_batch(100).await.unwrap()).unwrap();
        if event.records.is_empty() {
            return;
        }
        let response = octoscope_ledger_stream::handle(store, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// The deliveries listed once the stream has settled.
async fn ledger(stream: &mut StreamReader, store: &DynamoStore) -> Vec<(String, String)> {
    settle(stream, store).await;
    let page = store.list_deliveries(&DeliveryFilter::default(), &PageRequest::first(100)).await.unwrap();
    page.items.iter().map(|d| (d.delivery_id.to_string(), d.status.as_str().to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_delivery_is_stored_once_and_a_bad_signature_stores_nothing() {
    // GIVEN the webhook function over a fresh table, archive stream, bucket and secret parameter
    let Started { sdk, bucket, app, store, mut stream, body, guid } = started(true).await;

    // WHEN GitHub delivers a signed pull_request event
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);

    // THEN it is stored: the ledger item, the pull request row, the raw body archived through Firehose
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(ledger(&mut stream, &store).await, vec![(guid.clone(), "stored".to_owned())]);
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    let pull = store.get_pull(&repo, 2).await.unwrap().expect("the pull request is stored");
    assert_eq!(pull.pull.number, 2);
    let objects = archived(&sdk, &bucket).await;
    assert_eq!(objects.len(), 1, "{objects:?}");

    // WHEN the same delivery arrives again THEN it is a duplicate, with no second effect
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    assert_eq!(archived(&sdk, &bucket).await.len(), 1);

    // WHEN a delivery is signed with another secret THEN 401, and nothing is stored
    let other = uuid::Uuid::new_v4().to_string();
    let (status, _) = status_and_body(&invoke(&app, event(&body, "not-the-secret", &other)).await);
    assert_eq!(status, 401);
    assert_eq!(ledger(&mut stream, &store).await.len(), 1);
    assert_eq!(archived(&sdk, &bucket).await.len(), 1);

    // AND another path is a JSON 404 (the function serves the webhook only)
    let mut get = event(&body, SECRET, &other);
    get["rawPath"] = json!("/api/health");
    get["requestContext"]["http"]["method"] = json!("GET");
    get["requestContext"]["http"]["path"] = json!("/api/health");
    let (status, answer) = status_and_body(&invoke(&app, get).await);
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_archived_in_batched_objects_by_hour_and_replay_rebuilds_the_store_from_them() {
    // GIVEN the webhook function whose archive stream writes to a bucket under `batched/`
    let Started { sdk, bucket, app, store, stream: _, body, guid } = started(true).await;

    // WHEN GitHub delivers a pull_request and a push
    let before = chrono::Utc::now();
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    let push = octoscope_testkit::fixture("push", "payload.json");
    let push_guid = uuid::Uuid::new_v4().to_string();
    let (status, answer) = status_and_body(&invoke(&app, event_of("push", &push, SECRET, &push_guid)).await);
    assert!(status == 200 || status == 202, "{status} {answer}");

    // THEN each is a JSON line in an object under batched/YYYY/MM/DD/HH/, as Firehose names them
    let objects = archived(&sdk, &bucket).await;
    assert_eq!(objects.len(), 2, "{objects:?}");
    for key in &objects {
        let hour = key.strip_prefix(PREFIX).unwrap_or_default().split('/').take(4).collect::<Vec<_>>().join("/");
        let at = chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00"), "%Y/%m/%d/%H:%M");
        assert!(at.is_ok(), "{key} is not under {PREFIX}YYYY/MM/DD/HH/");
        let object = s3(&sdk).get_object().bucket(&bucket).key(key).send().await.unwrap();
        let text = String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert!(line["delivery"] == json!(guid) || line["delivery"] == json!(push_guid), "{line}");
        assert_eq!(line["enc"], json!("deflate"));
    }

    // AND the archive reads back both deliveries, bodies unchanged, from the hour they arrived in
    let archive = batched(&sdk, &bucket);
    let read = archive.scan(Some(&archive.cursor_at(before)), 10).await.unwrap();
    let mut got: Vec<(String, String, Vec<u8>)> =
        read.into_iter().map(|(_, d)| (d.key.delivery_id.to_string(), d.event.as_str().to_owned(), d.body)).collect();
    got.sort();
    let mut want = vec![(guid.clone(), "pull_request".to_owned(), body.clone()), (push_guid, "push".to_owned(), push)];
    want.sort();
    assert_eq!(got, want);

    // WHEN the store's entities are dropped and replay reads the batched objects
    let store = Arc::new(store);
    let report =
        octoscope::services::replay::replay(store.clone(), Arc::new(archive), |_| {}).await.expect("replay runs");

    // THEN both deliveries are replayed and the pull request is back
    assert_eq!(report.deliveries, 2, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    let pull = store.get_pull(&repo, 2).await.unwrap().expect("replay restored the pull request");
    assert_eq!(pull.pull.number, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_firehose_could_not_take_is_a_5xx_marked_nowhere_as_stored_and_its_redelivery_is_stored() {
    // GIVEN the function whose archive stream writes to a bucket that does not exist (yet):
    // moto's PutRecord then fails with a 500, as Firehose's own ServiceUnavailable does
    let Started { sdk, bucket, app, store, mut stream, body, guid } = started(false).await;

    // WHEN a delivery arrives THEN the answer is a 5xx: GitHub records it as failed
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert!((500..600).contains(&status), "{status} {answer}");
    // AND the ledger does not count it as done (its claim was released), and no entity was written
    assert!(
        ledger(&mut stream, &store).await.iter().all(|(_, s)| s != "stored"),
        "{:?}",
        ledger(&mut stream, &store).await
    );
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    assert!(store.get_pull(&repo, 2).await.unwrap().is_none());

    // WHEN the bucket exists and GitHub redelivers THEN it is stored and archived
    s3(&sdk).create_bucket().bucket(&bucket).send().await.unwrap();
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(ledger(&mut stream, &store).await, vec![(guid.clone(), "stored".to_owned())]);
    assert_eq!(archived(&sdk, &bucket).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_archive_stream_is_a_5xx_and_stores_nothing() {
    // GIVEN the function pointed at a stream that does not exist (a deploy mistake)
    let sdk = aws().await;
    let (mut config, _) = resources(&sdk, true).await;
    config.archive_stream = unique("missing-stream");
    let app = app(&config, Clients::new(&sdk)).await.unwrap();
    let store = store(&sdk, &config);
    let mut stream = reader(&config).await;
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    let guid = uuid::Uuid::new_v4().to_string();

    // WHEN a delivery arrives THEN 5xx (the archive is unavailable, GitHub should redeliver), nothing stored
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!(status, 503, "{answer}");
    assert!(ledger(&mut stream, &store).await.iter().all(|(_, s)| s != "stored"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_parameter_refuses_the_start_naming_the_variable() {
    // GIVEN a config whose parameter does not exist
    let sdk = aws().await;
    let (mut config, _) = resources(&sdk, true).await;
    config.secret_param = format!("/octoscope/test/{}", unique("missing"));
    // WHEN the function starts THEN it is refused, naming the variable and the parameter
    let err = app(&config, Clients::new(&sdk)).await.unwrap_err();
    let said = format!("{err:#}");
    assert!(said.contains("GITHUB_WEBHOOK_SECRET_PARAM") && said.contains(&config.secret_param), "{said}");
    assert!(!said.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_cut_short_after_its_archive_and_part_of_its_effects_is_stored_once_by_its_redelivery() {
    use octoscope::domain::{Change, DeliveryId, DeliveryKey, EventName, HookId, RawDelivery};
    use octoscope::ports::RawArchive;

    // GIVEN the function over fresh resources
    let sdk = aws().await;
    let (config, bucket) = resources(&sdk, true).await;
    let app = app(&config, Clients::new(&sdk)).await.unwrap();
    let store = store(&sdk, &config);
    let mut stream = reader(&config).await;
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    let guid = uuid::Uuid::new_v4().to_string();
    // AND a first attempt that died after archiving the body and writing the pull request, before the rest
    // (the repository) and before any ledger record
    let now = chrono::Utc::now();
    let archive = octoscope::adapters::aws::firehose::FirehoseArchive::new(
        aws_sdk_firehose::Client::new(&sdk),
        &config.archive_stream,
    );
    let key = DeliveryKey { hook_id: HookId::parse("4242").unwrap(), delivery_id: DeliveryId::parse(&guid).unwrap() };
    let raw = RawDelivery {
        key,
        event: EventName::parse("pull_request").unwrap(),
        received_at: now,
        content_type: Some("application/json".into()),
        body: body.clone(),
    };
    archive.put(&raw).await.unwrap();
    let changes = octoscope::webhook::normalize("pull_request", &body, now).unwrap().changes;
    let partial: Vec<Change> = changes.into_iter().filter(|c| matches!(c, Change::PullRequest { .. })).collect();
    assert_eq!(store.apply_changes(&partial).await.unwrap().applied, 1);
    assert!(ledger(&mut stream, &store).await.is_empty(), "nothing recorded in the ledger yet");

    // WHEN GitHub redelivers it
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);

    // THEN it is stored, once: one ledger entry, the pull request and its repository, counted once
    // (the delivery counted and listed by the stream's handler, not on the webhook's path)
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(store.stats().await.unwrap().deliveries.get("stored"), None, "counted before the stream's handler ran");
    assert_eq!(ledger(&mut stream, &store).await, vec![(guid.clone(), "stored".to_owned())]);
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    assert!(store.get_pull(&repo, 2).await.unwrap().is_some());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pull_requests, stats.repositories), (1, 1), "{stats:?}");
    assert_eq!(stats.deliveries.get("stored"), Some(&1), "{stats:?}");
    assert!(!archived(&sdk, &bucket).await.is_empty());

    // AND a further redelivery is a duplicate that counts nothing
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    settle(&mut stream, &store).await;
    assert_eq!(store.stats().await.unwrap(), stats);
}

//! The webhook function end to end on moto: a real API Gateway HTTP API (v2)
//! event, through lambda_http's adapter (what `lambda_http::run` does with
//! each invocation), into DynamoDB, S3, with the secret from SSM.

use std::collections::HashMap;

use aws_config::SdkConfig;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::config::aws::WebhookConfig;
use octoscope::domain::RepoName;
use octoscope::ports::store::*;
use octoscope::ports::{DeliveryFilter, PageRequest};
use octoscope_testkit::moto::{MotoServer, secure_parameter, unique};
use octoscope_webhook::{Clients, app};
use serde_json::{Value, json};

const SECRET: &str = "a-webhook-secret-for-the-lambda-tests";
const FIXTURE: &str = include_str!("fixtures/apigw-v2-post-webhook.json");

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

/// A table, a bucket (unless `bucket` is false: the name only) and the
/// secret's parameter; the function's config over them.
async fn resources(sdk: &SdkConfig, bucket: bool) -> WebhookConfig {
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &table).await.unwrap();
    let bucket_name = unique("octoscope-archive");
    if bucket {
        s3(sdk).create_bucket().bucket(&bucket_name).send().await.unwrap();
    }
    let param = secure_parameter(sdk, "webhook-secret", SECRET).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table),
        ("OCTOSCOPE_ARCHIVE_BUCKET", bucket_name),
        ("GITHUB_WEBHOOK_SECRET_PARAM", param),
    ]);
    WebhookConfig::load(|k| env.get(k).cloned()).unwrap()
}

/// The function started over fresh resources (see `resources`), its store,
/// the example pull_request body and a fresh delivery id for it.
struct Started {
    sdk: SdkConfig,
    config: WebhookConfig,
    app: Router,
    store: DynamoStore,
    body: Vec<u8>,
    guid: String,
}

async fn started(bucket: bool) -> Started {
    let sdk = aws().await;
    let config = resources(&sdk, bucket).await;
    let app = app(&config, Clients::new(&sdk)).await.unwrap();
    let store = store(&sdk, &config);
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    Started { sdk, config, app, store, body, guid: uuid::Uuid::new_v4().to_string() }
}

fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

fn store(sdk: &SdkConfig, config: &WebhookConfig) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table)
}

/// The fixture event carrying `body`, signed with `secret`, as delivery `guid`.
fn event(body: &[u8], secret: &str, guid: &str) -> Value {
    let mut e: Value = serde_json::from_str(FIXTURE).unwrap();
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

async fn archived(sdk: &SdkConfig, config: &WebhookConfig) -> Vec<String> {
    let out = s3(sdk).list_objects_v2().bucket(&config.archive_bucket).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

async fn ledger(store: &DynamoStore) -> Vec<(String, String)> {
    let page = store.list_deliveries(&DeliveryFilter::default(), &PageRequest::first(100)).await.unwrap();
    page.items.iter().map(|d| (d.delivery_id.to_string(), d.status.as_str().to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_delivery_is_stored_once_and_a_bad_signature_stores_nothing() {
    // GIVEN the webhook function over a fresh table, bucket and secret parameter
    let Started { sdk, config, app, store, body, guid } = started(true).await;

    // WHEN GitHub delivers a signed pull_request event
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);

    // THEN it is stored: the ledger item, the pull request row, the raw body in S3
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(ledger(&store).await, vec![(guid.clone(), "stored".to_owned())]);
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    let pull = store.get_pull(&repo, 2).await.unwrap().expect("the pull request is stored");
    assert_eq!(pull.pull.number, 2);
    let objects = archived(&sdk, &config).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].starts_with(octoscope_webhook::ARCHIVE_PREFIX), "{objects:?}");

    // WHEN the same delivery arrives again THEN it is a duplicate, with no second effect
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    assert_eq!(archived(&sdk, &config).await.len(), 1);

    // WHEN a delivery is signed with another secret THEN 401, and nothing is stored
    let other = uuid::Uuid::new_v4().to_string();
    let (status, _) = status_and_body(&invoke(&app, event(&body, "not-the-secret", &other)).await);
    assert_eq!(status, 401);
    assert_eq!(ledger(&store).await.len(), 1);
    assert_eq!(archived(&sdk, &config).await.len(), 1);

    // AND another path is a JSON 404 (the function serves the webhook only)
    let mut get = event(&body, SECRET, &other);
    get["rawPath"] = json!("/api/health");
    get["requestContext"]["http"]["method"] = json!("GET");
    get["requestContext"]["http"]["path"] = json!("/api/health");
    let (status, answer) = status_and_body(&invoke(&app, get).await);
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_that_could_not_be_archived_is_a_5xx_and_its_redelivery_is_stored() {
    // GIVEN the function with an archive bucket that does not exist (yet)
    let Started { sdk, config, app, store, body, guid } = started(false).await;

    // WHEN a delivery arrives THEN the answer is a 5xx: GitHub records it as failed
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert!((500..600).contains(&status), "{status} {answer}");
    // AND the ledger does not count it as done (it was released)
    assert!(ledger(&store).await.iter().all(|(_, s)| s != "stored"));

    // WHEN the bucket exists and GitHub redelivers THEN it is stored
    s3(&sdk).create_bucket().bucket(&config.archive_bucket).send().await.unwrap();
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(archived(&sdk, &config).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_parameter_refuses_the_start_naming_the_variable() {
    // GIVEN a config whose parameter does not exist
    let sdk = aws().await;
    let mut config = resources(&sdk, true).await;
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
    let Started { sdk, config, app, store, body, guid } = started(true).await;
    // AND a first attempt that died after archiving the body and writing the pull request, before the rest
    // (the repository) and before any ledger record
    let now = chrono::Utc::now();
    let archive = octoscope::adapters::aws::s3::S3Archive::new(
        s3(&sdk),
        &config.archive_bucket,
        octoscope_webhook::ARCHIVE_PREFIX,
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
    let partial: Vec<Change> = changes.into_iter().filter(|c| matches!(c, Change::PullRequest(_))).collect();
    assert_eq!(store.apply_changes(&partial).await.unwrap().applied, 1);
    assert!(ledger(&store).await.is_empty(), "nothing recorded in the ledger yet");

    // WHEN GitHub redelivers it
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);

    // THEN it is stored, once: one ledger entry, the pull request and its repository, counted once
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(ledger(&store).await, vec![(guid.clone(), "stored".to_owned())]);
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    assert!(store.get_pull(&repo, 2).await.unwrap().is_some());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pull_requests, stats.repositories), (1, 1), "{stats:?}");
    assert_eq!(stats.deliveries.get("stored"), Some(&1), "{stats:?}");
    assert!(!archived(&sdk, &config).await.is_empty());

    // AND a further redelivery is a duplicate that counts nothing
    let (status, answer) = status_and_body(&invoke(&app, event(&body, SECRET, &guid)).await);
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    assert_eq!(store.stats().await.unwrap(), stats);
}

//! Fault drills on the webhook function: its SDK clients talk to moto through
//! the testkit's fault proxy, which throttles, fails, drops or delays one
//! of its calls (the ledger check, the entity writes, the archive, the ledger
//! record). Whatever the fault, the answer is 2xx only when the delivery is
//! durably recorded (ledger `stored`, entities written, body archived) and
//! 5xx otherwise; then GitHub's redelivery, faults off, converges: the store
//! equals a fault-free run's, the ledger says `stored` once, and a further
//! copy is answered `duplicate`.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::config::aws::WebhookConfig;
use octoscope::domain::RepoName;
use octoscope::ports::store::*;
use octoscope::ports::{DeliveryFilter, PageRequest};
use octoscope::read::StoreStats;
use octoscope_testkit::faults::{Fault, FaultProxy, Rule};
use octoscope_testkit::moto::{MotoServer, StreamReader, archive_stream, secure_parameter, unique};
use octoscope_webhook::{Clients, app};
use serde_json::{Value, json};

const SECRET: &str = "a-webhook-secret-for-the-fault-drills";
const FIXTURE: &str = include_str!("fixtures/apigw-v2-post-webhook.json");
/// Each SDK attempt's timeout in these drills; [`Fault::Delay`] waits longer.
const ATTEMPT: Duration = Duration::from_millis(3000);
const DELAY: Duration = Duration::from_millis(3500);

/// The webhook's calls a drill can hit: (name, operation, a string its body holds).
const CALLS: &[(&str, &str, &str)] = &[
    ("ledger check", "GetItem", "DLV#"),
    ("entity writes", "UpdateItem", "PR#"),
    ("archive", "PutRecord", ""),
    ("ledger record", "PutItem", "attribute_not_exists(#pk) OR"),
];

/// The function over fresh resources on moto, its clients through a fault proxy.
struct Drill {
    direct: SdkConfig,
    bucket: String,
    stream: String,
    app: Router,
    store: DynamoStore,
    proxy: FaultProxy,
    /// The table's stream, for the ledger-stream handler (listings and counts are its work on AWS).
    changes: tokio::sync::Mutex<StreamReader>,
}

async fn drill() -> Drill {
    let moto = MotoServer::shared();
    let direct = moto.sdk_config().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&direct), &table).await.unwrap();
    let bucket = unique("octoscope-archive");
    s3(&direct).create_bucket().bucket(&bucket).send().await.unwrap();
    // moto holds at most 50 delivery streams: each drill deletes its own ([`Drill::end`]).
    let stream = archive_stream(&direct, &bucket, "batched/").await.unwrap();
    let param = secure_parameter(&direct, "webhook-secret", SECRET).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table.clone()),
        ("OCTOSCOPE_ARCHIVE_STREAM", stream.clone()),
        ("GITHUB_WEBHOOK_SECRET_PARAM", param),
    ]);
    let config = WebhookConfig::load(|k| env.get(k).cloned()).unwrap();
    let proxy = FaultProxy::start(&moto.endpoint).await.unwrap();
    let proxied = octoscope_testkit::faults::sdk_config(&proxy.url, ATTEMPT).await;
    let app = app(&config, Clients::new(&proxied)).await.unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&direct), &table);
    let changes = tokio::sync::Mutex::new(StreamReader::of_table(&moto.endpoint, &table).await.unwrap());
    Drill { direct, bucket, stream, app, store, proxy, changes }
}

impl Drill {
    async fn end(self) {
        let firehose = aws_sdk_firehose::Client::new(&self.direct);
        firehose.delete_delivery_stream().delivery_stream_name(&self.stream).send().await.unwrap();
    }
}

fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

fn event(body: &[u8], guid: &str) -> Value {
    let mut e: Value = serde_json::from_str(FIXTURE).unwrap();
    e["headers"]["x-github-event"] = json!("pull_request");
    e["body"] = json!(String::from_utf8(body.to_vec()).unwrap());
    e["headers"]["content-length"] = json!(body.len().to_string());
    e["headers"]["x-github-delivery"] = json!(guid);
    e["headers"]["x-hub-signature-256"] = json!(octoscope_testkit::sign(SECRET, body));
    e
}

/// One invocation as the Lambda runtime makes it: (status, the answer's `status` field).
async fn invoke(app: &Router, body: &[u8], guid: &str) -> (u64, String) {
    let request: LambdaRequest = serde_json::from_value(event(body, guid)).unwrap();
    let mut adapter = Adapter::from(app.clone());
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await.unwrap();
    let response = serde_json::to_value(response).unwrap();
    let text = response["body"].as_str().unwrap_or("null");
    let answer: Value = serde_json::from_str(text).unwrap_or(json!(text));
    (response["statusCode"].as_u64().unwrap(), answer["status"].as_str().unwrap_or(text).to_owned())
}

/// What a delivery left durable: the ledger, the counts, the pull request, the archive.
#[derive(Debug, PartialEq)]
struct Durable {
    ledger: Vec<(String, String)>,
    stats: StoreStats,
    pull: Option<String>,
    /// In the archive at least once (a failed attempt may have archived it already: replay applies it twice, harmlessly).
    archived: bool,
}

async fn durable(d: &Drill) -> Durable {
    // Every change of the table's stream not yet handled, through the ledger-stream handler, as on AWS.
    let mut changes = d.changes.lock().await;
    loop {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(changes.next_batch(100).await.unwrap()).unwrap();
        if event.records.is_empty() {
            break;
        }
        let response = octoscope_ledger_stream::handle(&d.store, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let page = d.store.list_deliveries(&DeliveryFilter::default(), &PageRequest::first(100)).await.unwrap();
    let ledger = page.items.iter().map(|i| (i.delivery_id.to_string(), i.status.as_str().to_owned())).collect();
    let mut stats = d.store.stats().await.unwrap();
    stats.last_delivery_at = None;
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    let pull = d.store.get_pull(&repo, 2).await.unwrap().map(|p| format!("{:?}", (p.pull.number, p.pull.state)));
    let archived =
        s3(&d.direct).list_objects_v2().bucket(&d.bucket).send().await.is_ok_and(|o| !o.contents().is_empty());
    Durable { ledger, stats, pull, archived }
}

/// The store after one fault-free delivery (the delivery id made equal to `guid`).
async fn fault_free(body: &[u8], guid: &str) -> Durable {
    let d = drill().await;
    assert_eq!(invoke(&d.app, body, guid).await, (200, "stored".to_owned()));
    let state = durable(&d).await;
    d.end().await;
    state
}

/// Every fault kind on `call`, `times` faulty attempts in a row (3 = every
/// attempt the SDK makes; 1 = the SDK's retry gets through), each on fresh resources.
async fn drills_on(call: &str, times: usize) {
    let (_, op, contains) = *CALLS.iter().find(|c| c.0 == call).unwrap();
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    let (mut results, mut problems) = (Vec::new(), Vec::new());
    for fault in Fault::all(DELAY) {
        let d = drill().await;
        let guid = uuid::Uuid::new_v4().to_string();
        let want = fault_free(&body, &guid).await;
        let mut rule = Rule::on(op, fault).times(times);
        if !contains.is_empty() {
            rule = rule.containing(contains);
        }
        d.proxy.add(rule);

        // WHEN GitHub delivers it through the faulty call
        let (status, answer) = invoke(&d.app, &body, &guid).await;
        let injected = d.proxy.injected();
        let after = durable(&d).await;
        d.proxy.clear();

        // THEN the fault was met, and the answer is 2xx only if the delivery is durably recorded
        assert!(injected > 0, "{call}, {fault:?}: the rule picked no request: {:?}", ops(&d.proxy));
        let recorded = after.ledger == want.ledger && after.pull.is_some() && after.archived;
        match status {
            200..=299 => assert!(recorded, "{call}, {fault:?} ×{times}: {status} {answer} but {after:?}"),
            500..=599 => {}
            _ => panic!("{call}, {fault:?} ×{times}: answered {status} {answer}"),
        }

        // WHEN GitHub redelivers it (faults off) THEN the store equals a fault-free run's
        let redelivered = invoke(&d.app, &body, &guid).await;
        let want_again = if (200..300).contains(&status) { "duplicate" } else { "stored" };
        if redelivered != (200, want_again.to_owned()) {
            problems.push(format!("{fault:?} ×{times}: redelivery answered {redelivered:?}, not {want_again}"));
        }
        // AND a further copy is a duplicate
        let copy = invoke(&d.app, &body, &guid).await;
        if copy != (200, "duplicate".to_owned()) {
            problems.push(format!("{fault:?} ×{times}: a further copy answered {copy:?}"));
        }
        let converged = durable(&d).await;
        if converged != want {
            problems.push(format!("{fault:?} ×{times}: after the redelivery {converged:?}, fault-free {want:?}"));
        }
        results.push(format!("{fault:?} ×{times}: {status} {answer}"));
        d.end().await;
    }
    println!("{call}: {}", results.join("; "));
    assert!(problems.is_empty(), "{call}: {} drills did not converge:\n{}", problems.len(), problems.join("\n"));
}

fn ops(proxy: &FaultProxy) -> Vec<String> {
    proxy.seen().iter().map(|s| format!("{} {}", s.op, s.body)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_ledger_check() {
    drills_on("ledger check", 3).await;
    drills_on("ledger check", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_entity_writes() {
    drills_on("entity writes", 3).await;
    drills_on("entity writes", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_archive() {
    drills_on("archive", 3).await;
    drills_on("archive", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_ledger_record() {
    drills_on("ledger record", 3).await;
    drills_on("ledger record", 1).await;
}

/// The calls one fault-free delivery makes, as the proxy sees them (what the drills' rules pick from).
#[tokio::test(flavor = "multi_thread")]
async fn a_fault_free_delivery_makes_each_drilled_call() {
    let d = drill().await;
    d.proxy.forget();
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    assert_eq!(invoke(&d.app, &body, &uuid::Uuid::new_v4().to_string()).await, (200, "stored".to_owned()));
    let seen = ops(&d.proxy);
    for s in &seen {
        println!("{}", s.chars().take(200).collect::<String>());
    }
    for (call, op, contains) in CALLS {
        assert!(seen.iter().any(|s| s.starts_with(op) && s.contains(contains)), "no {call} call: {seen:?}");
    }
    d.end().await;
}

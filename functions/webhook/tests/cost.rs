//! What a delivery costs: the demo organisation's deliveries through the
//! webhook function's path (API Gateway v2 event → lambda_http → the webhook
//! Router → IngestService → DynamoDB and the Firehose archive on moto), with the DynamoDB store's
//! request-unit meter attached (`meter.rs`: units as AWS bills them, computed
//! from item sizes; moto's own ConsumedCapacity is a constant).
//!
//! The delivery listings and counts are written by the ledger-stream
//! function from the table's stream: the bench reads moto's stream, keeps the
//! records the event source mapping's filter passes (marked ledger items),
//! and hands them to the handler in batches of `BENCH_STREAM_BATCH` (default
//! 100, the mapping's batch size), metered on their own, with the function's
//! scheduled settle of the rollup cells every `BENCH_SETTLE_EVERY`
//! deliveries (default 347: a 15-minute period at a million deliveries a
//! month) on the same meter.
//!
//! `make bench-cost` runs `bench_cost` (ignored otherwise) and prints WRU per
//! delivery on average and per event type (the webhook's path, and with the
//! stream function's share), the RRU of `/api/health`, and the cost per
//! million deliveries, then the same per event type for GitHub's example
//! payloads (each once, on a table of their own; the first delivery of a
//! process also writes the registry items, so read a type of one payload
//! with that in mind). `BENCH_DELIVERIES` caps how many of the demo's
//! deliveries are sent (default: all). The demo's pull requests and reviews
//! carry no body; `BENCH_BODY_BYTES=N` gives every pull request a body of N
//! bytes and every review one of N / 4 (what bodies cost: a pull request's on
//! an item of its own, written when it changes; a review's on its item).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::{CostMeter, DynamoStore, SETTLE_AFTER, create_table};
use octoscope::adapters::aws::firehose::FirehoseArchive;
use octoscope::adapters::aws::pricing::per_million_deliveries;
use octoscope::adapters::clock::SystemClock;
use octoscope::api::{WebhookState, webhook_router};
use octoscope::domain::RepoName;
use octoscope::ports::store::*;
use octoscope::ports::{DeliveryFilter, PageRequest};
use octoscope::services::IngestService;
use octoscope::services::demo::{DEMO_SECRET, generate};
use octoscope::webhook::WebhookSecrets;
use octoscope_testkit::moto::{MotoServer, StreamReader, archive_stream, unique};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/apigw-v2-post-webhook.json");

/// The webhook function's Router (as `octoscope_webhook::app` builds it) over
/// a metered store, on a moto server of its own: a server is one Python
/// process, busy on one core at most, and the drives here are long (two side
/// by side use both cores of a 2-core machine instead of queueing at one).
struct Metered {
    _moto: MotoServer,
    app: Router,
    meter: Arc<CostMeter>,
    /// A store reading what the webhook wrote (on `meter`).
    store: DynamoStore,
    /// The ledger-stream function's store, on its own meter.
    stream_store: DynamoStore,
    stream_meter: Arc<CostMeter>,
    stream: StreamReader,
}

async fn metered_app() -> Metered {
    let moto = MotoServer::start().unwrap();
    let sdk = moto.sdk_config().await;
    let table = unique("octoscope");
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &table).await.unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let bucket = unique("octoscope-archive");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let meter = Arc::new(CostMeter::new());
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), &table).with_meter(meter.clone()).with_stream_derivation());
    let stream = archive_stream(&sdk, &bucket, "batched/").await.unwrap();
    let archive = Arc::new(FirehoseArchive::new(aws_sdk_firehose::Client::new(&sdk), stream));
    let secrets = WebhookSecrets::parse(DEMO_SECRET).unwrap();
    let ingest = IngestService::new(store, archive, Arc::new(SystemClock), secrets);
    let app = webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: 25 * 1024 * 1024 });
    let stream_meter = Arc::new(CostMeter::new());
    let reader = StreamReader::of_table(&moto.endpoint, &table).await.unwrap();
    Metered {
        _moto: moto,
        app,
        meter: meter.clone(),
        store: DynamoStore::new(dynamodb.clone(), &table).with_meter(meter),
        stream_store: DynamoStore::new(dynamodb, &table).with_meter(stream_meter.clone()),
        stream_meter,
        stream: reader,
    }
}

/// The items whose changes the metric rollup cells follow (Terraform's
/// `local.rollup_entities`, `terraform/ledger_stream.tf`).
const ROLLUP_ENTITIES: [&str; 3] = ["pull_request", "workflow_run", "workflow_job"];

/// What the event source mapping passes to the ledger-stream function
/// (Terraform's filter criteria, any of three patterns): a marked ledger item
/// (`{"dynamodb": {"NewImage": {"derive": {"S": ["stream"]}}}}`), or a record
/// whose new or old image is an item the rollups follow
/// (`{"dynamodb": {"NewImage"|"OldImage": {"entity": {"S": [...]}}}}`).
fn passes_filter(record: &Value) -> bool {
    let image = &record["dynamodb"];
    let follows = |which: &str| image[which]["entity"]["S"].as_str().is_some_and(|e| ROLLUP_ENTITIES.contains(&e));
    image["NewImage"]["derive"]["S"] == json!("stream") || follows("NewImage") || follows("OldImage")
}

/// Every record of the stream since the last call, filtered as the mapping
/// does, through the handler in batches of `batch`; the number of batches.
async fn feed(m: &mut Metered, batch: usize) -> usize {
    let mut passed = Vec::new();
    loop {
        let read = m.stream.next_batch(1000).await.unwrap();
        let records = read["Records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        passed.extend(records.into_iter().filter(passes_filter));
    }
    for chunk in passed.chunks(batch.max(1)) {
        let event: Event = serde_json::from_value(json!({ "Records": chunk })).unwrap();
        let response = octoscope_ledger_stream::handle(&m.stream_store, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    passed.len().div_ceil(batch.max(1))
}

fn event(event_name: &str, body: &[u8], guid: &str) -> Value {
    let mut e: Value = serde_json::from_str(FIXTURE).unwrap();
    e["body"] = json!(String::from_utf8(body.to_vec()).unwrap());
    e["headers"]["content-length"] = json!(body.len().to_string());
    e["headers"]["x-github-delivery"] = json!(guid);
    e["headers"]["x-github-event"] = json!(event_name);
    e["headers"]["x-hub-signature-256"] = json!(octoscope_testkit::sign(DEMO_SECRET, body));
    e
}

async fn invoke(app: &Router, event: Value) -> (u64, Value) {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let mut adapter = Adapter::from(app.clone());
    let response = serde_json::to_value(adapter.call(LambdaEvent::new(request, Context::default())).await.unwrap());
    let response = response.unwrap();
    let body = response["body"].as_str().unwrap_or("null");
    (response["statusCode"].as_u64().unwrap(), serde_json::from_str(body).unwrap_or(json!(body)))
}

#[derive(Default)]
struct Tally {
    deliveries: u64,
    wru: f64,
    rru: f64,
}

/// `payload` with a pull request body of `bytes` and a review body of a
/// quarter of that (none when 0 or for other events).
fn with_bodies(event: &str, payload: &[u8], bytes: usize) -> Vec<u8> {
    if bytes == 0 || !event.starts_with("pull_request") {
        return payload.to_vec();
    }
    let mut v: Value = serde_json::from_slice(payload).unwrap();
    let text = |n: usize| "Lorem ipsum dolor sit amet. ".repeat(n / 28 + 1)[..n].to_owned();
    v["pull_request"]["body"] = json!(text(bytes));
    if v.get("review").is_some() {
        v["review"]["body"] = json!(text(bytes / 4));
    }
    serde_json::to_vec(&v).unwrap()
}

/// The function's scheduled settle of the rollup cells the stream's batches
/// marked (all of them: as if a minute had passed), on the stream's meter.
async fn settle(m: &Metered) {
    let later = chrono::Utc::now() + SETTLE_AFTER + chrono::Duration::seconds(1);
    let settled = m.stream_store.settle_rollups("bench", later, chrono::Duration::minutes(1)).await.unwrap();
    assert!(settled.is_some(), "no other settle holds the lock");
}

/// The deliveries one settle's period holds at a million deliveries a
/// month with the default schedule (Terraform `rollup_settle_schedule`,
/// every 15 minutes): 1,000,000 / (30 × 24 × 4).
const DELIVERIES_PER_SETTLE: usize = 347;

/// Send `limit` demo deliveries (pull requests with bodies of `body_bytes`,
/// [`with_bodies`]), the stream fed to its function every `batch`
/// deliveries and the rollups settled every `settle_every`; the tally per
/// event type, and the stream's batches and the settles.
async fn drive(
    m: &mut Metered,
    limit: usize,
    batch: usize,
    settle_every: usize,
    body_bytes: usize,
) -> (BTreeMap<String, Tally>, usize, usize) {
    let deliveries = generate(chrono::Utc::now(), 7);
    let mut by_event: BTreeMap<String, Tally> = BTreeMap::new();
    let (mut batches, mut settles) = (0, 0);
    for (i, d) in deliveries.iter().take(limit).enumerate() {
        let body = with_bodies(d.event, &d.body, body_bytes);
        let (w0, r0) = (m.meter.wru(), m.meter.rru());
        let (status, answer) = invoke(&m.app, event(d.event, &body, &format!("cost-{i:06}"))).await;
        assert_eq!(status, 200, "{} {answer}", d.event);
        let t = by_event.entry(d.event.to_owned()).or_default();
        t.deliveries += 1;
        t.wru += m.meter.wru() - w0;
        t.rru += m.meter.rru() - r0;
        if (i + 1) % batch.max(1) == 0 {
            batches += feed(m, batch).await;
        }
        // The schedule settles what the stream's batches have marked so far.
        if (i + 1) % settle_every.max(1) == 0 {
            settle(m).await;
            settles += 1;
        }
    }
    batches += feed(m, batch).await;
    settle(m).await;
    (by_event, batches, settles + 1)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the cost benchmark: make bench-cost"]
async fn bench_cost() {
    let limit = std::env::var("BENCH_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    let batch = std::env::var("BENCH_STREAM_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let settle_every =
        std::env::var("BENCH_SETTLE_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(DELIVERIES_PER_SETTLE);
    let body_bytes = std::env::var("BENCH_BODY_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut m = metered_app().await;
    let (by_event, batches, settles) = drive(&mut m, limit, batch, settle_every, body_bytes).await;
    let (n, wru, rru) =
        by_event.values().fold((0u64, 0.0, 0.0), |(n, w, r), t| (n + t.deliveries, w + t.wru, r + t.rru));
    let (stream_w, stream_r) = (m.stream_meter.wru() / n as f64, m.stream_meter.rru() / n as f64);
    println!("\nDynamoDB request units per delivery (the demo organisation's mix through the webhook path on moto;");
    println!(
        "`+ stream`: with the ledger-stream function's share, {batches} batches of up to {batch} \
         and {settles} settles of the rollups, one every {settle_every} deliveries):"
    );
    println!("{:<28} {:>10} {:>10} {:>10} {:>12}", "event", "deliveries", "WRU", "RRU", "WRU + stream");
    for (event, t) in &by_event {
        let d = t.deliveries as f64;
        println!(
            "{event:<28} {:>10} {:>10.2} {:>10.2} {:>12.2}",
            t.deliveries,
            t.wru / d,
            t.rru / d,
            t.wru / d + stream_w
        );
    }
    let (avg_w, avg_r) = (wru / n as f64, rru / n as f64);
    println!("{:<28} {n:>10} {avg_w:>10.2} {avg_r:>10.2} {:>12.2}", "average", avg_w + stream_w);
    println!("{:<28} {:>10} {stream_w:>10.2} {stream_r:>10.2}", "ledger-stream (per delivery)", batches);
    let r0 = m.meter.rru();
    m.store.stats().await.unwrap();
    println!("\n/api/health (stats): {:.1} RRU a call", m.meter.rru() - r0);
    println!("\nCost per million deliveries (us-east-1 list prices, shared/src/adapters/aws/pricing.rs):");
    // The function's invocations: its stream batches and its settles.
    let per_batch = n as f64 / (batches + settles).max(1) as f64;
    for line in per_million_deliveries(avg_w + stream_w, avg_r + stream_r, per_batch) {
        println!("{:<34} ${:>7.2}", line.what, line.per_million);
    }
    examples().await;
}

/// GitHub's example payloads (`octoscope_testkit::all_fixtures`), each once
/// through the webhook's path on a table of their own: WRU and RRU per
/// delivery by event type (the webhook's path only; an event type the
/// product does not follow is archived and acknowledged: its ledger item).
async fn examples() {
    let mut m = metered_app().await;
    let mut by_event: BTreeMap<String, Tally> = BTreeMap::new();
    for (i, (event_name, _, body)) in octoscope_testkit::all_fixtures().into_iter().enumerate() {
        let (w0, r0) = (m.meter.wru(), m.meter.rru());
        let (status, answer) = invoke(&m.app, event(&event_name, &body, &format!("example-{i:04}"))).await;
        assert!(status < 500, "{event_name}: {status} {answer}");
        let t = by_event.entry(event_name).or_default();
        t.deliveries += 1;
        t.wru += m.meter.wru() - w0;
        t.rru += m.meter.rru() - r0;
    }
    feed(&mut m, 100).await;
    println!(
        "\nGitHub's example payloads, each once through the webhook path (per delivery, the stream's share not included):"
    );
    println!("{:<32} {:>8} {:>8} {:>8}", "event", "payloads", "WRU", "RRU");
    for (event, t) in &by_event {
        let d = t.deliveries as f64;
        println!("{event:<32} {:>8} {:>8.2} {:>8.2}", t.deliveries, t.wru / d, t.rru / d);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_delivery_and_health_stay_within_their_unit_budgets() {
    // GIVEN the webhook path over a metered store, and the demo's first deliveries (teams, members, repositories)
    let mut m = metered_app().await;
    let (by_event, ..) = drive(&mut m, 200, 100, DELIVERIES_PER_SETTLE, 0).await;
    // THEN a pull_request delivery writes at most 6 units on average with its share of the stream's
    let n: u64 = by_event.values().map(|t| t.deliveries).sum();
    let stream = m.stream_meter.wru() / n as f64;
    let pr = &by_event["pull_request"];
    let per_pr = pr.wru / pr.deliveries as f64 + stream;
    assert!(per_pr <= 6.0, "pull_request: {per_pr:.2} WRU a delivery");
    // AND the deliveries are listed and counted (by the stream's function), /api/health reading at most 10 units
    let r0 = m.meter.rru();
    let stats = m.store.stats().await.unwrap();
    assert!(m.meter.rru() - r0 <= 10.0, "{} RRU", m.meter.rru() - r0);
    assert!(stats.pull_requests > 0, "{stats:?}");
    assert_eq!(stats.deliveries.values().sum::<u64>(), n, "{stats:?}");
    let listed = m.store.list_deliveries(&DeliveryFilter::default(), &PageRequest::first(500)).await.unwrap();
    assert_eq!(listed.items.len() as u64, n);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_body_is_written_when_it_changes_not_with_every_delivery_that_carries_it() {
    // GIVEN the webhook path over a metered store, the demo's deliveries without bodies, and again with
    // 2,000-byte pull request bodies (a template filled in) and 500-byte review bodies
    // (the two drives side by side, each on its own moto server)
    let (mut plain, mut bodied) = tokio::join!(metered_app(), metered_app());
    let ((without, ..), (with, ..)) = tokio::join!(
        drive(&mut plain, 200, 100, DELIVERIES_PER_SETTLE, 0),
        drive(&mut bodied, 200, 100, DELIVERIES_PER_SETTLE, 2_000)
    );
    let per = |t: &BTreeMap<String, Tally>, e: &str| t[e].wru / t[e].deliveries as f64;
    // THEN a review delivery, which carries its pull request's unchanged body, writes no more than without
    // bodies but its own review's (500 bytes: within the review item's first KB)
    let review = (per(&without, "pull_request_review"), per(&with, "pull_request_review"));
    assert!(review.1 - review.0 < 0.05, "pull_request_review WRU without and with bodies: {review:?}");
    // AND pull_request deliveries pay for a body once per pull request (3 WRU: a 2 KB body item),
    // not with each delivery (which would be 2 WRU more on every write of the pull request item)
    let pulls: std::collections::HashSet<(String, u64)> = generate(chrono::Utc::now(), 7)
        .iter()
        .take(200)
        .filter(|d| d.event == "pull_request")
        .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap())
        .map(|v| (v["repository"]["full_name"].as_str().unwrap().to_owned(), v["number"].as_u64().unwrap()))
        .collect();
    let extra = with["pull_request"].wru - without["pull_request"].wru;
    let deliveries = with["pull_request"].deliveries;
    assert!(
        extra <= 3.0 * pulls.len() as f64 + 0.5,
        "{extra} WRU more for {} pull requests' bodies over {deliveries} deliveries",
        pulls.len()
    );
    // AND the bodies read back whole
    let listed = bodied.store.list_pulls(&Default::default(), &PageRequest::first(1)).await.unwrap();
    let p = &listed.items[0];
    let detail = bodied.store.get_pull(&p.repo, p.number).await.unwrap().unwrap();
    assert_eq!(detail.pull.body.map(|b| b.len()), Some(2_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_and_a_job_pay_no_index_write_for_being_unfinished_and_the_stream_marks_them() {
    // GIVEN the demo's first workflow run and its first job, each as GitHub sends its life
    // (requested / queued, in_progress, completed), in the demo's order
    let mut m = metered_app().await;
    let demo = generate(chrono::Utc::now(), 7);
    let json = |d: &octoscope::services::demo::DemoDelivery| serde_json::from_slice::<Value>(&d.body).unwrap();
    let run_json = json(demo.iter().find(|d| d.event == "workflow_run").unwrap());
    let (run_id, repo) = (run_json["workflow_run"]["id"].clone(), run_json["repository"]["full_name"].clone());
    let job_id = demo
        .iter()
        .filter(|d| d.event == "workflow_job")
        .map(|d| json(d)["workflow_job"].clone())
        .find(|j| j["run_id"] == run_id)
        .unwrap()["id"]
        .clone();
    let lives: Vec<(&str, Vec<u8>)> = demo
        .iter()
        .filter(|d| match d.event {
            "workflow_run" => json(d)["workflow_run"]["id"] == run_id,
            "workflow_job" => json(d)["workflow_job"]["id"] == job_id,
            _ => false,
        })
        .map(|d| (d.event, d.body.clone()))
        .collect();
    let actions: Vec<Value> =
        lives.iter().map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["action"].clone()).collect();
    assert_eq!(actions.len(), 6, "three deliveries each: {actions:?}");
    assert_eq!(actions[..2], [json!("requested"), json!("queued")], "created first: {actions:?}");
    // WHEN each goes through the webhook's path, the stream fed after the third
    let (mut wru, mut rru) = (Vec::new(), Vec::new());
    for (i, (event_name, body)) in lives.iter().enumerate() {
        let (w0, r0) = (m.meter.wru(), m.meter.rru());
        let (status, answer) = invoke(&m.app, event(event_name, body, &format!("life-{i}"))).await;
        assert_eq!(status, 200, "{answer}");
        wru.push(m.meter.wru() - w0);
        rru.push(m.meter.rru() - r0);
        if i == 2 {
            feed(&mut m, 100).await;
            // THEN the run, unfinished, is where its repository's unfinished runs begin
            let repo = RepoName::parse(repo.as_str().unwrap()).unwrap();
            let created =
                chrono::DateTime::parse_from_rfc3339(run_json["workflow_run"]["created_at"].as_str().unwrap());
            let runs =
                m.store.stored_runs(&repo, None, &[], Some(created.unwrap().to_utc() - chrono::TimeDelta::days(7)));
            assert_eq!(runs.await.unwrap().oldest_unfinished, Some(created.unwrap().to_utc()));
        }
    }
    // AND a delivery after each one's first costs its ledger item and its item only (1 + 1 WRU):
    // no index entry is set while it is unfinished or removed when it completes, and the job,
    // created with its run, is found through its run: its first delivery costs 1 + 1 too
    // (the run's first also writes its creation index entries, and the first of all the registries)
    assert_eq!(wru[1..], [2.0, 2.0, 2.0, 2.0, 2.0], "WRU per delivery: {wru:?}");
    // AND each reads the duplicate check's ledger item (0.5 RRU, eventually consistent) and its
    // repository's item once (1 RRU), which settles the repository's name: no alias item is read
    assert_eq!(rru[1..], [1.5, 1.5, 1.5, 1.5, 1.5], "RRU per delivery: {rru:?}");
    // AND once the stream has seen them complete, nothing of the repository is unfinished
    feed(&mut m, 100).await;
    let repo = RepoName::parse(repo.as_str().unwrap()).unwrap();
    let from = chrono::Utc::now() - chrono::TimeDelta::days(3650);
    assert_eq!(m.store.stored_runs(&repo, None, &[], Some(from)).await.unwrap().oldest_unfinished, None);
}

//! What a delivery costs: the demo organisation's deliveries through the
//! webhook function's path (API Gateway v2 event → lambda_http → the webhook
//! Router → IngestService → DynamoDB and the Firehose archive on moto), with the DynamoDB store's
//! request-unit meter attached (`meter.rs`: units as AWS bills them, computed
//! from item sizes; moto's own ConsumedCapacity is a constant).
//!
//! `make bench-cost` runs `bench_cost` (ignored otherwise) and prints WRU per
//! delivery on average and per event type, the RRU of `/api/health`, and the
//! cost per million deliveries. `BENCH_DELIVERIES` caps how many of the demo's
//! deliveries are sent (default: all).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::{CostMeter, DynamoStore, create_table};
use octoscope::adapters::aws::firehose::FirehoseArchive;
use octoscope::adapters::aws::pricing::per_million_deliveries;
use octoscope::adapters::clock::SystemClock;
use octoscope::api::{WebhookState, webhook_router};
use octoscope::ports::store::*;
use octoscope::services::IngestService;
use octoscope::services::demo::{DEMO_SECRET, generate};
use octoscope::webhook::WebhookSecrets;
use octoscope_testkit::moto::{MotoServer, archive_stream, unique};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/apigw-v2-post-webhook.json");

/// The webhook function's Router (as `octoscope_webhook::app` builds it) over a metered store.
async fn metered_app() -> (Router, Arc<CostMeter>, DynamoStore) {
    let sdk = MotoServer::shared().sdk_config().await;
    let table = unique("octoscope");
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &table).await.unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let bucket = unique("octoscope-archive");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let meter = Arc::new(CostMeter::new());
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), &table).with_meter(meter.clone()));
    let stream = archive_stream(&sdk, &bucket, "batched/").await.unwrap();
    let archive = Arc::new(FirehoseArchive::new(aws_sdk_firehose::Client::new(&sdk), stream));
    let secrets = WebhookSecrets::parse(DEMO_SECRET).unwrap();
    let ingest = IngestService::new(store, archive, Arc::new(SystemClock), secrets);
    let app = webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: 25 * 1024 * 1024 });
    (app, meter.clone(), DynamoStore::new(dynamodb, &table).with_meter(meter))
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

/// Send `limit` demo deliveries; the tally per event type.
async fn drive(app: &Router, meter: &CostMeter, limit: usize) -> BTreeMap<String, Tally> {
    let deliveries = generate(chrono::Utc::now(), 7);
    let mut by_event: BTreeMap<String, Tally> = BTreeMap::new();
    for (i, d) in deliveries.iter().take(limit).enumerate() {
        let (w0, r0) = (meter.wru(), meter.rru());
        let (status, answer) = invoke(app, event(d.event, &d.body, &format!("cost-{i:06}"))).await;
        assert_eq!(status, 200, "{} {answer}", d.event);
        let t = by_event.entry(d.event.to_owned()).or_default();
        t.deliveries += 1;
        t.wru += meter.wru() - w0;
        t.rru += meter.rru() - r0;
    }
    by_event
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the cost benchmark: make bench-cost"]
async fn bench_cost() {
    let limit = std::env::var("BENCH_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
    let (app, meter, store) = metered_app().await;
    let by_event = drive(&app, &meter, limit).await;
    let (n, wru, rru) =
        by_event.values().fold((0u64, 0.0, 0.0), |(n, w, r), t| (n + t.deliveries, w + t.wru, r + t.rru));
    println!("\nDynamoDB request units per delivery (the demo organisation's mix through the webhook path on moto):");
    println!("{:<28} {:>10} {:>10} {:>10}", "event", "deliveries", "WRU", "RRU");
    for (event, t) in &by_event {
        let d = t.deliveries as f64;
        println!("{event:<28} {:>10} {:>10.2} {:>10.2}", t.deliveries, t.wru / d, t.rru / d);
    }
    let (avg_w, avg_r) = (wru / n as f64, rru / n as f64);
    println!("{:<28} {n:>10} {avg_w:>10.2} {avg_r:>10.2}", "average");
    let r0 = meter.rru();
    store.stats().await.unwrap();
    println!("\n/api/health (stats): {:.1} RRU a call", meter.rru() - r0);
    println!("\nCost per million deliveries (us-east-1 list prices, shared/src/adapters/aws/pricing.rs):");
    for line in per_million_deliveries(avg_w, avg_r) {
        println!("{:<34} ${:>7.2}", line.what, line.per_million);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_delivery_and_health_stay_within_their_unit_budgets() {
    // GIVEN the webhook path over a metered store, and the demo's first deliveries (teams, members, repositories)
    let (app, meter, store) = metered_app().await;
    let by_event = drive(&app, &meter, 200).await;
    // THEN a pull_request delivery writes at most 9.5 units on average (measured ≈ 9; the
    // issue's target of 6 is not reached yet: shared/docs/dynamodb.md, "Cost")
    let pr = &by_event["pull_request"];
    let per_pr = pr.wru / pr.deliveries as f64;
    assert!(per_pr <= 9.5, "pull_request: {per_pr:.2} WRU a delivery");
    // AND /api/health reads at most 10 units
    let r0 = meter.rru();
    let stats = store.stats().await.unwrap();
    assert!(stats.pull_requests > 0, "{stats:?}");
    assert!(meter.rru() - r0 <= 10.0, "{} RRU", meter.rru() - r0);
}

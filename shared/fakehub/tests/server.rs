//! The fake GitHub over plain HTTP: credentials, rate-limit headers and
//! resets, ETags, injected faults, cursor-paginated deliveries, webhook
//! signatures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use octoscope_fakehub::{FakeHub, Fault, HubConfig, OrgSpec, RateLimit, WebhookSpec};
use serde_json::{Value, json};
use sha2::Sha256;

fn small() -> OrgSpec {
    OrgSpec { repos: 2, pulls: 10, teams: 2, runs: 3, ..OrgSpec::default() }
}

async fn get(hub: &FakeHub, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", hub.url)).bearer_auth(hub.token());
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    req.send().await.unwrap()
}

async fn graphql(hub: &FakeHub, query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/graphql", hub.url))
        .bearer_auth(hub.token())
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn requests_without_the_token_are_refused_and_counted() {
    let hub = FakeHub::start(small()).await.unwrap();
    let r = reqwest::Client::new().get(format!("{}/orgs/octo-org/hooks", hub.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(hub.requests("GET /orgs/{org}/hooks"), 1);
    assert_eq!(get(&hub, "/orgs/octo-org/hooks", None).await.status(), 200);
    assert_eq!(hub.requests("GET /orgs/{org}/hooks"), 2);
}

#[tokio::test]
async fn the_budget_runs_out_and_resets_after_its_window() {
    // GIVEN a budget of 2 REST requests per second
    let config = HubConfig { rate_limit: RateLimit::new(2, Duration::from_secs(1)), ..HubConfig::default() };
    let hub = FakeHub::start_with(small(), config).await.unwrap();
    // WHEN three requests are made at once
    let a = get(&hub, "/orgs/octo-org/hooks", None).await;
    let b = get(&hub, "/orgs/octo-org/hooks", None).await;
    let c = get(&hub, "/orgs/octo-org/hooks", None).await;
    // THEN the headers count down and the third is refused with a reset time
    assert_eq!((header(&a, "x-ratelimit-remaining"), header(&b, "x-ratelimit-remaining")), ("1".into(), "0".into()));
    assert_eq!(c.status(), 403);
    assert_eq!(header(&c, "x-ratelimit-remaining"), "0");
    let reset: i64 = header(&c, "x-ratelimit-reset").parse().unwrap();
    assert!(reset >= chrono::Utc::now().timestamp());
    // AND after the reset the budget is whole again
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let d = get(&hub, "/orgs/octo-org/hooks", None).await;
    assert_eq!(d.status(), 200);
    assert_eq!(header(&d, "x-ratelimit-remaining"), "1");
    // AND GraphQL has its own budget
    let g = graphql(&hub, "{ rateLimit { remaining } }").await;
    assert_eq!(header(&g, "x-ratelimit-resource"), "graphql");
}

#[tokio::test]
async fn a_matching_etag_gets_304_for_free() {
    let hub = FakeHub::start(small()).await.unwrap();
    let first = get(&hub, "/repos/octo-org/repo-0/actions/runs?per_page=100", None).await;
    let etag = header(&first, "etag");
    let before: u64 = header(&first, "x-ratelimit-remaining").parse().unwrap();
    assert!(!etag.is_empty());
    let again = get(&hub, "/repos/octo-org/repo-0/actions/runs?per_page=100", Some(&etag)).await;
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "x-ratelimit-remaining").parse::<u64>().unwrap(), before);
    let stale = get(&hub, "/repos/octo-org/repo-0/actions/runs?per_page=100", Some("\"stale\"")).await;
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn injected_faults_come_in_order_then_stop() {
    let hub = FakeHub::start(small()).await.unwrap();
    hub.fail_next([Fault::ServerError(503), Fault::SecondaryLimit { status: 429, retry_after_secs: Some(7) }]);
    let a = get(&hub, "/orgs/octo-org/hooks", None).await;
    let b = get(&hub, "/orgs/octo-org/hooks", None).await;
    let c = get(&hub, "/orgs/octo-org/hooks", None).await;
    assert_eq!(a.status(), 503);
    assert_eq!(b.status(), 429);
    assert_eq!(header(&b, "retry-after"), "7");
    assert!(b.text().await.unwrap().contains("secondary rate limit"));
    assert_eq!(c.status(), 200);
}

#[tokio::test]
async fn graphql_errors_look_like_github_s() {
    let hub = FakeHub::start(small()).await.unwrap();
    let body: Value =
        graphql(&hub, "{ repository(owner: \"octo-org\", name: \"repo-0\") { nonsense } }").await.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nonsense"), "{body}");
    let body: Value =
        graphql(&hub, "{ repository(owner: \"octo-org\", name: \"repo-0\") {").await.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().starts_with("Parse error"), "{body}");
}

#[tokio::test]
async fn webhooks_are_signed_and_deliveries_page_by_cursor() {
    // GIVEN a receiver that records the signature header and body
    type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                log.lock().unwrap().push((h("x-hub-signature-256"), h("x-github-event"), body.to_vec()));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hub = FakeHub::start(small()).await.unwrap();
    let spec = WebhookSpec::default();

    // WHEN the history is sent
    let report = hub.send_webhooks(&url, &spec).await.unwrap();

    // THEN every body carries a valid HMAC-SHA256 signature
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), report.events);
    for (sig, _, body) in &seen {
        let mut mac = Hmac::<Sha256>::new_from_slice(spec.secret.as_bytes()).unwrap();
        mac.update(body);
        assert_eq!(sig, &format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
    }
    // AND the hook's deliveries page newest first by cursor, each once
    let (mut path, mut ids) = (format!("/orgs/octo-org/hooks/{}/deliveries?per_page=40", hub.hook_id()), Vec::new());
    loop {
        let r = get(&hub, &path, None).await;
        let link = header(&r, "link");
        let page: Vec<Value> = r.json().await.unwrap();
        ids.extend(page.iter().map(|d| d["id"].as_u64().unwrap()));
        match link.split(';').next().filter(|_| link.contains("rel=\"next\"")) {
            Some(next) => path = next.trim_matches(['<', '>']).trim_start_matches(&hub.url).to_owned(),
            None => break,
        }
    }
    assert_eq!(ids.len(), report.events);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
}

#[tokio::test]
async fn concurrent_sending_delivers_every_event_once() {
    // GIVEN a receiver that counts deliveries per GUID
    let seen: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let guid =
                    headers.get("x-github-delivery").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                *log.lock().unwrap().entry(guid).or_default() += 1;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hub = FakeHub::start(OrgSpec { repos: 3, pulls: 40, ..OrgSpec::default() }).await.unwrap();
    // WHEN the history is sent 8 at a time
    let report = hub.send_webhooks(&url, &WebhookSpec { concurrency: 8, ..WebhookSpec::default() }).await.unwrap();
    // THEN each event arrived exactly once and every answer was counted
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), report.events);
    assert!(seen.values().all(|n| *n == 1));
    assert_eq!(report.statuses.get(&200), Some(&report.events));
}

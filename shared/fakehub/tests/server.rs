//! The fake GitHub over plain HTTP: credentials, rate-limit headers and
//! resets, ETags, injected faults, cursor-paginated deliveries, webhook
//! signatures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use octoscope_fakehub::{FakeHub, Fault, HubConfig, NullNode, OrgSpec, RateLimit, WebhookSpec};
use serde_json::{Value, json};
use sha2::Sha256;

fn small() -> OrgSpec {
    OrgSpec { repos: 2, pulls: 10, teams: 2, runs: 3, ..OrgSpec::default() }
}

async fn get(hub: &FakeHub, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut req = octoscope_fakehub::http().build().unwrap().get(format!("{}{path}", hub.url)).bearer_auth(hub.token());
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    req.send().await.unwrap()
}

async fn graphql(hub: &FakeHub, query: &str) -> reqwest::Response {
    octoscope_fakehub::http()
        .build()
        .unwrap()
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
    let r = octoscope_fakehub::http()
        .build()
        .unwrap()
        .get(format!("{}/orgs/octo-org/hooks", hub.url))
        .send()
        .await
        .unwrap();
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

/// Follow `rel="next"` links from `path`; every item of every page.
async fn walk(hub: &FakeHub, path: &str, items: impl Fn(&Value) -> Vec<Value>) -> (Vec<Value>, usize) {
    let (mut path, mut out, mut pages) = (path.to_owned(), Vec::new(), 0);
    loop {
        let r = get(hub, &path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let link = header(&r, "link");
        let body: Value = r.json().await.unwrap();
        out.extend(items(&body));
        pages += 1;
        match link.split(';').next().filter(|_| link.contains("rel=\"next\"")) {
            Some(next) => path = next.trim_matches(['<', '>']).trim_start_matches(&hub.url).to_owned(),
            None => return (out, pages),
        }
    }
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn runs_filter_by_created_newest_first_with_node_ids() {
    // GIVEN a repository with 60 runs and a time exactly on one of them
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 60, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    let mut times: Vec<_> = truth.runs.iter().map(|r| r.created_at).collect();
    times.sort();
    let (t1, t2) = (times[20], times[40]);
    let count =
        |keep: &dyn Fn(chrono::DateTime<chrono::Utc>) -> bool| truth.runs.iter().filter(|r| keep(r.created_at)).count();
    for (filter, want) in [
        (format!(">={}", ts(t1)), count(&|t| t >= t1)),
        (format!(">{}", ts(t1)), count(&|t| t > t1)),
        (format!("<={}", ts(t1)), count(&|t| t <= t1)),
        (format!("<{}", ts(t1)), count(&|t| t < t1)),
        (format!("{}..{}", ts(t1), ts(t2)), count(&|t| t >= t1 && t <= t2)),
    ] {
        // WHEN the runs are listed with the filter, 7 per page
        let path = format!("/repos/octo-org/repo-0/actions/runs?per_page=7&created={}", urlencode(&filter));
        let first: Value = get(&hub, &path, None).await.json().await.unwrap();
        let (runs, _) = walk(&hub, &path, |b| b["workflow_runs"].as_array().unwrap().clone()).await;
        // THEN total_count and the pages agree with the truth, newest first, each with its node id
        assert_eq!(first["total_count"], want, "{filter}");
        assert_eq!(runs.len(), want, "{filter}");
        let keys: Vec<(String, i64)> =
            runs.iter().map(|r| (r["created_at"].as_str().unwrap().to_owned(), r["id"].as_i64().unwrap())).collect();
        assert!(keys.windows(2).all(|w| w[0] > w[1]), "{filter}: newest first");
        for r in &runs {
            assert_eq!(r["node_id"], format!("WFR_{}", r["id"]));
        }
    }
    // AND a filter that is no date is refused
    assert_eq!(get(&hub, "/repos/octo-org/repo-0/actions/runs?created=%3E%3Dsoon", None).await.status(), 422);
}

#[tokio::test]
async fn a_filtered_run_list_reaches_only_its_first_thousand() {
    // GIVEN 1,100 runs, all after the start of the org's history
    let spec = OrgSpec { repos: 1, pulls: 0, runs: 1100, teams: 0, deployments: 0, commits: 0, ..OrgSpec::default() };
    let hub = FakeHub::start(spec.clone()).await.unwrap();
    let created = urlencode(&format!(">={}", ts(spec.start)));
    // WHEN page 10 and page 11 of 100 are asked with a created filter
    let p10: Value =
        get(&hub, &format!("/repos/octo-org/repo-0/actions/runs?per_page=100&page=10&created={created}"), None)
            .await
            .json()
            .await
            .unwrap();
    let r11 =
        get(&hub, &format!("/repos/octo-org/repo-0/actions/runs?per_page=100&page=11&created={created}"), None).await;
    assert_eq!(header(&r11, "link"), "", "no next page past the cap");
    let p11: Value = r11.json().await.unwrap();
    // THEN page 10 is full, page 11 is empty, and both still count every match
    assert_eq!(p10["workflow_runs"].as_array().unwrap().len(), 100);
    assert_eq!(p11["workflow_runs"].as_array().unwrap().len(), 0);
    assert_eq!((p10["total_count"].as_u64(), p11["total_count"].as_u64()), (Some(1100), Some(1100)));
    // AND without a filter every run is reachable
    let (all, pages) = walk(&hub, "/repos/octo-org/repo-0/actions/runs?per_page=100", |b| {
        b["workflow_runs"].as_array().unwrap().clone()
    })
    .await;
    assert_eq!((all.len(), pages), (1100, 11));
}

#[tokio::test]
async fn jobs_of_a_run_page_in_github_s_shape() {
    // GIVEN runs with their jobs
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 30, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    let run = truth.runs.iter().find(|r| r.jobs.len() >= 3).expect("a run with 3 jobs or more");
    // WHEN its jobs are listed 2 per page, every attempt
    let path = format!("/repos/octo-org/repo-0/actions/runs/{}/jobs?filter=all&per_page=2", run.id);
    let first: Value = get(&hub, &path, None).await.json().await.unwrap();
    let (jobs, pages) = walk(&hub, &path, |b| b["jobs"].as_array().unwrap().clone()).await;
    // THEN the pages hold each job once, as the truth has it
    assert_eq!(first["total_count"], run.jobs.len());
    assert_eq!(pages, run.jobs.len().div_ceil(2));
    assert_eq!(jobs.len(), run.jobs.len());
    for (got, want) in jobs.iter().zip(&run.jobs) {
        assert_eq!(got["id"], want.id);
        assert_eq!((got["run_id"].as_i64(), got["run_attempt"].as_i64()), (Some(run.id), Some(want.run_attempt)));
        assert_eq!(got["node_id"], want.node_id.as_str());
        assert_eq!(got["labels"], json!(want.labels));
        assert_eq!(got["status"], want.status.as_str());
        assert_eq!(got["conclusion"], json!(want.conclusion));
        assert_eq!(got["runner_name"], json!(want.runner_name));
        assert_eq!(got["runner_group_name"], json!(want.runner_group_name));
        assert_eq!(got["created_at"], ts(want.created_at));
        assert_eq!(got["started_at"], ts(want.started_at));
        assert_eq!(got["completed_at"], json!(want.completed_at.map(ts)));
        assert_eq!(got["workflow_name"], run.name.as_str());
        assert_eq!(
            (got["head_sha"].as_str(), got["head_branch"].as_str()),
            (Some(run.head_sha.as_str()), Some(run.head_branch.as_str()))
        );
        assert_eq!(got["steps"], json!([]));
    }
    // AND the endpoint is counted, and an unknown run is 404
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"), 1 + pages as u64);
    assert_eq!(get(&hub, "/repos/octo-org/repo-0/actions/runs/1/jobs", None).await.status(), 404);
    assert_eq!(get(&hub, "/repos/octo-org/repo-0/actions/runs/nope/jobs", None).await.status(), 404);
}

#[tokio::test]
async fn deployments_and_their_statuses_come_newest_first() {
    // GIVEN a repository with 12 deployments
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, deployments: 12, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    // WHEN they are listed 5 per page
    let (got, pages) =
        walk(&hub, "/repos/octo-org/repo-0/deployments?per_page=5", |b| b.as_array().unwrap().clone()).await;
    // THEN every deployment comes once, newest first, as the truth has it
    assert_eq!((got.len(), pages), (12, 3));
    let mut want = truth.deployments.clone();
    want.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["id"], w.id);
        assert_eq!(g["node_id"], w.node_id.as_str());
        assert_eq!((g["sha"].as_str(), g["ref"].as_str()), (Some(w.sha.as_str()), Some(w.git_ref.as_str())));
        assert_eq!((g["environment"].as_str(), g["task"].as_str()), (Some(w.environment.as_str()), Some("deploy")));
        assert_eq!(g["creator"]["login"], w.creator.as_str());
        assert_eq!(
            (g["created_at"].as_str(), g["updated_at"].as_str()),
            (Some(ts(w.created_at).as_str()), Some(ts(w.updated_at).as_str()))
        );
    }
    // AND each deployment's statuses come newest first
    let d = truth.deployments.iter().max_by_key(|d| d.statuses.len()).unwrap();
    assert!(d.statuses.len() >= 2, "a deployment with a few statuses");
    let path = format!("/repos/octo-org/repo-0/deployments/{}/statuses?per_page=1", d.id);
    let (statuses, pages) = walk(&hub, &path, |b| b.as_array().unwrap().clone()).await;
    assert_eq!(pages, d.statuses.len());
    let ids: Vec<i64> = statuses.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, d.statuses.iter().rev().map(|s| s.id).collect::<Vec<_>>());
    let newest = &statuses[0];
    let latest = d.latest_status().unwrap();
    assert_eq!(
        (newest["state"].as_str(), newest["node_id"].as_str()),
        (Some(latest.state.as_str()), Some(latest.node_id.as_str()))
    );
    assert_eq!(newest["creator"]["login"], latest.creator.as_str());
    assert_eq!(newest["environment"], latest.environment.as_str());
    assert_eq!(newest["created_at"], ts(latest.created_at));
    // AND the endpoints are counted, and unknown deployments are 404
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/deployments"), 3);
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"), pages as u64);
    assert_eq!(get(&hub, "/repos/octo-org/repo-0/deployments/5/statuses", None).await.status(), 404);
    assert_eq!(get(&hub, "/repos/octo-org/nope/deployments", None).await.status(), 404);
    // AND a deployment's statuses_url leads to its statuses on the fake
    let statuses_url = got[0]["statuses_url"].as_str().unwrap();
    assert!(statuses_url.starts_with(&hub.url), "{statuses_url}");
    let listed: Value = get(&hub, statuses_url.trim_start_matches(&hub.url), None).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), want[0].statuses.len());
}

#[tokio::test]
async fn every_rest_get_has_an_etag_and_a_304_is_free_and_counted_apart() {
    // GIVEN each new REST endpoint answered once
    let hub = FakeHub::start(small()).await.unwrap();
    let (run, deployment) = {
        let org = hub.org();
        (org.repos[0].runs[0].id, org.repos[0].deployments[0].id)
    };
    for (path, key) in [
        ("/repos/octo-org/repo-0/actions/runs?per_page=1".to_owned(), "GET /repos/{owner}/{repo}/actions/runs"),
        (
            format!("/repos/octo-org/repo-0/actions/runs/{run}/jobs"),
            "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
        ),
        ("/repos/octo-org/repo-0/deployments".to_owned(), "GET /repos/{owner}/{repo}/deployments"),
        (
            format!("/repos/octo-org/repo-0/deployments/{deployment}/statuses"),
            "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
        ),
    ] {
        let first = get(&hub, &path, None).await;
        let etag = header(&first, "etag");
        let remaining: u64 = header(&first, "x-ratelimit-remaining").parse().unwrap();
        assert!(etag.starts_with('"'), "{path}: {etag:?}");
        let total = hub.total_requests();
        // WHEN it is asked again with the ETag, weak or not
        let again = get(&hub, &path, Some(&format!("W/{etag}"))).await;
        // THEN 304, no body, the budget untouched, counted as a request and as a 304
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "x-ratelimit-remaining").parse::<u64>().unwrap(), remaining, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        assert_eq!(hub.requests(key), 2, "{key}");
        assert_eq!(hub.requests(&format!("304 {key}")), 1, "{key}");
        assert_eq!(hub.total_requests(), total + 1);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Send a document that must be valid on GitHub (its fields and arguments are in GitHub's schema).
async fn graphql_vars(hub: &FakeHub, query: &str, variables: Value) -> Value {
    assert_eq!(schema_errors(query), Vec::<String>::new(), "not in GitHub's schema: {query}");
    octoscope_fakehub::http()
        .build()
        .unwrap()
        .post(format!("{}/graphql", hub.url))
        .bearer_auth(hub.token())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn graphql_deployments_page_newest_first_with_their_latest_status() {
    // GIVEN a repository with 9 deployments
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, deployments: 9, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    let q = "query D($after: String) { repository(owner: \"octo-org\", name: \"repo-0\") {
               deployments(first: 4, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
                 totalCount nodes { databaseId createdAt latestStatus { state createdAt updatedAt } }
                 pageInfo { hasNextPage endCursor } } } }";
    // WHEN they are walked 4 per page
    let (mut after, mut got, mut pages) = (Value::Null, Vec::new(), 0);
    loop {
        let out = graphql_vars(&hub, q, json!({ "after": after })).await;
        let conn = &out["data"]["repository"]["deployments"];
        assert_eq!(conn["totalCount"], 9, "{out}");
        got.extend(conn["nodes"].as_array().unwrap().clone());
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    // THEN each comes once, newest first, its latest status in GitHub's upper case (null without one)
    assert_eq!((got.len(), pages), (9, 3));
    let mut want = truth.deployments.clone();
    want.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["databaseId"], w.id);
        assert_eq!(g["createdAt"], ts(w.created_at));
        match w.latest_status() {
            Some(s) => {
                assert_eq!(g["latestStatus"]["state"], s.state.to_ascii_uppercase());
                assert_eq!(g["latestStatus"]["createdAt"], ts(s.created_at));
                assert_eq!(g["latestStatus"]["updatedAt"], ts(s.updated_at));
            }
            None => assert_eq!(g["latestStatus"], Value::Null),
        }
    }
    // AND ascending order is the reverse
    let asc = graphql(&hub, "{ repository(owner: \"octo-org\", name: \"repo-0\") { deployments(first: 100, orderBy: {field: CREATED_AT, direction: ASC}) { nodes { databaseId } } } }")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let asc: Vec<&Value> = asc["data"]["repository"]["deployments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["databaseId"])
        .collect();
    let desc: Vec<&Value> = got.iter().rev().map(|n| &n["databaseId"]).collect();
    assert_eq!(asc, desc);
}

#[tokio::test]
async fn graphql_history_counts_and_pages_the_default_branch_since_a_time() {
    // GIVEN a repository whose default branch has 30 commits, and a time on the 11th newest
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, commits: 30, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    let since = truth.commits[truth.commits.len() - 11].committed_at;
    let want: Vec<_> = truth.commits.iter().rev().filter(|c| c.committed_at >= since).collect();
    assert!(want.len() >= 11 && want.len() < 30, "{}", want.len());
    let history = "history(first: 4, after: $after, since: $since) {
                     totalCount nodes { oid message committedDate author { name user { login } } }
                     pageInfo { hasNextPage endCursor } }";
    for via in [
        format!("defaultBranchRef {{ name target {{ ... on Commit {{ {history} }} }} }}"),
        format!("ref(qualifiedName: \"refs/heads/main\") {{ name target {{ ... on Commit {{ {history} }} }} }}"),
    ] {
        let q = format!(
            "query H($after: String, $since: GitTimestamp) {{ repository(owner: \"octo-org\", name: \"repo-0\") {{ b: {via} }} }}"
        );
        // WHEN the history since that time is walked 4 per page
        let (mut after, mut got) = (Value::Null, Vec::new());
        loop {
            let out = graphql_vars(&hub, &q, json!({ "after": after, "since": ts(since) })).await;
            let conn = &out["data"]["repository"]["b"]["target"]["history"];
            // THEN the total counts the commits since then, and the pages hold them newest first
            assert_eq!(conn["totalCount"], want.len(), "{out}");
            got.extend(conn["nodes"].as_array().unwrap().clone());
            if conn["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["oid"], w.sha.as_str());
            assert_eq!(g["message"], w.message.as_str());
            assert_eq!(g["committedDate"], ts(w.committed_at));
            assert_eq!(g["author"]["name"], w.author_name.as_str());
            assert_eq!(
                g["author"]["user"]["login"],
                json!(w.author_login),
                "a commit of an unknown author has no user"
            );
        }
        assert_eq!(got[0]["oid"], truth.branches[0].head_sha.as_str(), "the head first");
    }
    // AND without `since` every commit counts, and a missing ref is null
    let out: Value = graphql(&hub, "{ repository(owner: \"octo-org\", name: \"repo-0\") { defaultBranchRef { target { ... on Commit { history { totalCount } } } } nope: ref(qualifiedName: \"refs/heads/nope\") { name } } }")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["data"]["repository"]["defaultBranchRef"]["target"]["history"]["totalCount"], 30, "{out}");
    assert_eq!(out["data"]["repository"]["nope"], Value::Null);
}

#[tokio::test]
async fn graphql_nodes_count_the_jobs_of_workflow_runs_and_null_unknown_ids() {
    // GIVEN runs in every state, and an id that names nothing
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 40, ..OrgSpec::default() }).await.unwrap();
    let truth = hub.org().repos[0].clone();
    let mut ids: Vec<String> = truth.runs.iter().map(|r| r.node_id.clone()).collect();
    ids.insert(3, "WFR_999".into());
    let q = "query J($ids: [ID!]!) { nodes(ids: $ids) { __typename ... on WorkflowRun { databaseId checkSuite {
               all: checkRuns(filterBy: {checkType: ALL}) { totalCount }
               done: checkRuns(filterBy: {checkType: ALL, status: COMPLETED}) { totalCount } } } } }";
    // WHEN their job counts are asked in one request
    let out = graphql_vars(&hub, q, json!({ "ids": ids })).await;
    let nodes = out["data"]["nodes"].as_array().unwrap();
    // THEN each run has its jobs and its completed jobs counted, in the order asked
    assert_eq!(nodes.len(), ids.len());
    let runs = nodes.iter().enumerate().filter(|(k, _)| *k != 3).map(|(_, n)| n);
    for (n, run) in runs.zip(&truth.runs) {
        assert_eq!(n["__typename"], "WorkflowRun");
        assert_eq!(n["databaseId"], run.id);
        assert_eq!(n["checkSuite"]["all"]["totalCount"], run.jobs.len());
        let done = run.jobs.iter().filter(|j| j.status == "completed").count();
        assert_eq!(n["checkSuite"]["done"]["totalCount"], done);
    }
    assert!(truth.runs.iter().any(|r| r.jobs.iter().any(|j| j.status != "completed")), "some jobs unfinished");
    // AND the unknown id is null, with GitHub's NOT_FOUND error pointing at it
    assert_eq!(nodes[3], Value::Null);
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["type"], "NOT_FOUND");
    assert_eq!(errors[0]["path"], json!(["nodes", 3]));
    assert_eq!(errors[0]["message"], "Could not resolve to a node with the global id of 'WFR_999'");
}

#[tokio::test]
async fn graphql_org_repositories_newest_first_and_review_counts() {
    // GIVEN an org of 4 repositories, one of them created later
    let hub = FakeHub::start(OrgSpec { repos: 4, pulls: 5, ..OrgSpec::default() }).await.unwrap();
    hub.update(|org| org.repos[1].created_at += chrono::Duration::days(3));
    let (late, pulls) = {
        let org = hub.org();
        (org.repos[1].full_name(), org.repos[0].pulls.clone())
    };
    // WHEN the org's repositories are asked newest first, with the review counts of a repository's pulls
    let out: Value = graphql(&hub, "{ organization(login: \"octo-org\") { repositories(first: 2, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { databaseId nameWithOwner } } }
                                      repository(owner: \"octo-org\", name: \"repo-0\") { pullRequests(first: 100) { nodes { number reviews { totalCount } } } } }")
        .await
        .json()
        .await
        .unwrap();
    // THEN the total counts all, the newest comes first, and each pull request counts its reviews
    let repos = &out["data"]["organization"]["repositories"];
    assert_eq!(repos["totalCount"], 4, "{out}");
    assert_eq!(repos["nodes"][0]["nameWithOwner"], late.as_str());
    assert_eq!(repos["nodes"].as_array().unwrap().len(), 2);
    for (n, p) in out["data"]["repository"]["pullRequests"]["nodes"].as_array().unwrap().iter().zip(&pulls) {
        assert_eq!(
            (n["number"].as_u64(), n["reviews"]["totalCount"].as_u64()),
            (Some(p.number), Some(p.reviews.len() as u64))
        );
    }
}

#[tokio::test]
async fn a_null_node_comes_back_null_for_as_many_requests_as_asked() {
    // GIVEN pull request #3 of repo-0 made a null node for 2 requests
    let hub = FakeHub::start(small()).await.unwrap();
    hub.null_node(NullNode::Pull { repo: "octo-org/repo-0".into(), number: 3 }, 2);
    let q = "{ repository(owner: \"octo-org\", name: \"repo-0\") { pullRequests(first: 100) { nodes { number } edges { node { number } } } } }";
    let other =
        "{ repository(owner: \"octo-org\", name: \"repo-1\") { pullRequests(first: 100) { nodes { number } } } }";
    let nulls = |out: &Value| {
        out["data"]["repository"]["pullRequests"]["nodes"].as_array().unwrap().iter().filter(|n| n.is_null()).count()
    };
    // WHEN a request that does not hold it is made THEN nothing is null and nothing is spent
    let out: Value = graphql(&hub, other).await.json().await.unwrap();
    assert_eq!((nulls(&out), out.get("errors")), (0, None));
    // WHEN the pull requests are read THEN #3 is null in nodes and edges, with FORBIDDEN errors pointing at it
    for _ in 0..2 {
        let out: Value = graphql(&hub, q).await.json().await.unwrap();
        assert_eq!(nulls(&out), 1, "{out}");
        let pos = 2; // #3 in creation order
        let conn = &out["data"]["repository"]["pullRequests"];
        assert_eq!(conn["nodes"][pos], Value::Null);
        assert_eq!(conn["edges"][pos]["node"], Value::Null);
        assert_eq!(conn["nodes"][pos + 1]["number"], 4, "the rest is served");
        let errors = out["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e["type"] == "FORBIDDEN"));
        assert_eq!(errors[0]["path"], json!(["repository", "pullRequests", "nodes", pos]));
        assert_eq!(errors[1]["path"], json!(["repository", "pullRequests", "edges", pos, "node"]));
    }
    // AND the third time it comes back normally
    let out: Value = graphql(&hub, q).await.json().await.unwrap();
    assert_eq!((nulls(&out), out.get("errors")), (0, None), "{out}");
    assert_eq!(out["data"]["repository"]["pullRequests"]["nodes"][2]["number"], 3);
}

/// Every change the history gives, normalised by the product's parser.
fn normalised(events: &[octoscope_fakehub::Event]) -> Vec<octoscope::domain::Change> {
    events
        .iter()
        .flat_map(|e| {
            let body = serde_json::to_vec(&e.payload).unwrap();
            let n = octoscope::webhook::normalize(e.name, &body, chrono::Utc::now())
                .unwrap_or_else(|err| panic!("{} {:?} did not normalise: {err}", e.name, e.action));
            assert!(n.tracked && !n.changes.is_empty(), "{} {:?} gave no change", e.name, e.action);
            n.changes
        })
        .collect()
}

#[tokio::test]
async fn the_history_replayed_gives_every_job_deployment_status_and_commit() {
    use octoscope::domain::Change;
    use std::collections::BTreeMap;
    // GIVEN an org's history with jobs, deployments and the default branches' commits
    let hub =
        FakeHub::start(OrgSpec { repos: 2, pulls: 3, runs: 12, deployments: 5, commits: 9, ..OrgSpec::default() })
            .await
            .unwrap();
    let org = hub.org().clone();
    let events = hub.history(false);
    let kinds: std::collections::BTreeSet<(&str, Option<&str>)> =
        events.iter().map(|e| (e.name, e.action.as_deref())).collect();
    for want in [
        ("workflow_job", Some("queued")),
        ("workflow_job", Some("in_progress")),
        ("workflow_job", Some("completed")),
        ("deployment", Some("created")),
        ("deployment_status", Some("created")),
    ] {
        assert!(kinds.contains(&want), "no {want:?} event");
    }
    // WHEN the product normalises each event and keeps the newest version of each entity (in reverse order)
    let mut changes = normalised(&events);
    changes.reverse();
    let (mut jobs, mut deployments, mut statuses, mut commits) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut heads: BTreeMap<(String, String), (chrono::DateTime<chrono::Utc>, Option<String>)> = BTreeMap::new();
    for c in changes {
        match c {
            Change::WorkflowJob(j)
                if jobs.get(&j.id).is_none_or(|old: &octoscope::domain::WorkflowJob| j.version() >= old.version()) =>
            {
                jobs.insert(j.id, j);
            }
            Change::Deployment(d)
                if deployments
                    .get(&d.id)
                    .is_none_or(|old: &octoscope::domain::Deployment| d.updated_at >= old.updated_at) =>
            {
                deployments.insert(d.id, d);
            }
            Change::DeploymentStatus(s) => {
                statuses.insert(s.id, s);
            }
            // (Other branches' pushes carry their head commit only.)
            Change::Commit { commit, branch, .. } if branch.as_deref() == Some("main") => {
                commits.insert((commit.repo.to_string(), commit.sha.clone()), commit);
            }
            Change::Branch(b) => {
                let key = (b.repo.to_string(), b.name.clone());
                if heads.get(&key).is_none_or(|(v, _)| b.version >= *v) {
                    heads.insert(key, (b.version, b.head_sha));
                }
            }
            _ => {}
        }
    }
    // THEN every job is there as the truth has it: status, conclusion, runner labels, queue times
    for repo in &org.repos {
        for run in &repo.runs {
            for want in &run.jobs {
                let got = &jobs[&want.id];
                assert_eq!((got.run_id, got.name.as_str()), (run.id, want.name.as_str()));
                assert_eq!(got.status, octoscope::domain::RunStatus::parse(&want.status), "job {}", want.id);
                assert_eq!(got.conclusion, want.conclusion);
                assert_eq!(got.labels, want.labels);
                assert_eq!(got.runner_name, want.runner_name);
                assert_eq!(got.runner_group, want.runner_group_name);
                assert_eq!(
                    (got.created_at, got.started_at, got.completed_at),
                    (Some(want.created_at), Some(want.started_at), want.completed_at)
                );
            }
        }
        // AND every deployment and status, the deployment updated with its newest status
        for want in &repo.deployments {
            let got = &deployments[&want.id];
            assert_eq!(
                (got.sha.as_deref(), got.environment.as_deref()),
                (Some(want.sha.as_str()), Some(want.environment.as_str()))
            );
            assert_eq!((got.created_at, got.updated_at), (want.created_at, want.updated_at));
            for s in &want.statuses {
                let got = &statuses[&s.id];
                assert_eq!(
                    (got.deployment_id, got.state.as_str(), got.created_at),
                    (want.id, s.state.as_str(), s.created_at)
                );
            }
        }
        // AND every commit of the default branch, whose head is the newest
        for want in &repo.commits {
            let got = &commits[&(repo.full_name(), want.sha.clone())];
            assert_eq!((got.message.as_str(), got.committed_at), (want.message.as_str(), Some(want.committed_at)));
            assert_eq!(
                (got.author_name.as_deref(), got.author_login.as_deref()),
                (Some(want.author_name.as_str()), want.author_login.as_deref())
            );
        }
        assert_eq!(
            heads[&(repo.full_name(), "main".to_owned())].1.as_deref(),
            Some(repo.branches[0].head_sha.as_str())
        );
    }
    let total = |f: fn(&octoscope_fakehub::Repo) -> usize| org.repos.iter().map(f).sum::<usize>();
    assert_eq!(jobs.len(), total(|r| r.runs.iter().map(|w| w.jobs.len()).sum()));
    assert_eq!(deployments.len(), total(|r| r.deployments.len()));
    assert_eq!(statuses.len(), total(|r| r.deployments.iter().map(|d| d.statuses.len()).sum()));
    assert_eq!(commits.len(), total(|r| r.commits.len()));
}

#[tokio::test]
async fn lost_events_are_neither_delivered_nor_logged() {
    // GIVEN a receiver that records the event names it gets
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let event = headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                log.lock().unwrap().push(event);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hub = FakeHub::start(small()).await.unwrap();
    let history = hub.history(false);
    let lost = ["workflow_run", "workflow_job", "deployment_status"];
    let lost_in_history = history.iter().filter(|e| lost.contains(&e.name)).count();
    assert!(lost_in_history > 0);
    // WHEN the history is sent with every workflow_run, workflow_job and deployment_status event lost
    let spec = WebhookSpec { lost_events: lost.iter().map(|s| (*s).to_owned()).collect(), ..WebhookSpec::default() };
    let report = hub.send_webhooks(&url, &spec).await.unwrap();
    // THEN none of them arrived, none is in the hook's delivery log, and the rest arrived
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|e| !lost.contains(&e.as_str())), "a lost event arrived");
    assert!(hub.deliveries().iter().all(|d| !lost.contains(&d.event.as_str())), "a lost event is logged");
    assert_eq!((report.lost, report.events), (lost_in_history, history.len() - lost_in_history));
    assert_eq!(seen.len(), report.events);
    assert_eq!(hub.deliveries().len(), report.events);
}

/// GitHub's public schema (vendored with the adapter's tests): the fields and
/// arguments of each object and interface type, and each field's named type.
type Fields = std::collections::HashMap<String, (Vec<String>, String)>;

fn github_schema() -> &'static std::collections::HashMap<String, Fields> {
    use graphql_parser::schema::{Definition, Type, TypeDefinition};
    static SCHEMA: std::sync::OnceLock<std::collections::HashMap<String, Fields>> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        fn named(t: &Type<'_, String>) -> String {
            match t {
                Type::NamedType(n) => n.clone(),
                Type::ListType(t) | Type::NonNullType(t) => named(t),
            }
        }
        let text = include_str!("../../tests/fixtures/github-graphql/schema.graphql");
        let doc = graphql_parser::parse_schema::<String>(text).expect("GitHub's schema parses");
        let mut types = std::collections::HashMap::new();
        for def in doc.definitions {
            let (name, fields) = match def {
                Definition::TypeDefinition(TypeDefinition::Object(o)) => (o.name, o.fields),
                Definition::TypeDefinition(TypeDefinition::Interface(i)) => (i.name, i.fields),
                _ => continue,
            };
            let fields = fields
                .into_iter()
                .map(|f| (f.name, (f.arguments.into_iter().map(|a| a.name).collect(), named(&f.field_type))))
                .collect();
            types.insert(name, fields);
        }
        types
    })
}

/// The fields and arguments `doc` selects that GitHub's schema does not have.
fn schema_errors(doc: &str) -> Vec<String> {
    use graphql_parser::query::{Definition, OperationDefinition, Selection, SelectionSet, TypeCondition};
    fn walk(
        on: &str,
        set: &SelectionSet<'_, String>,
        doc: &graphql_parser::query::Document<'_, String>,
        errors: &mut Vec<String>,
    ) {
        let schema = github_schema();
        for item in &set.items {
            match item {
                Selection::Field(f) if f.name == "__typename" => {}
                Selection::Field(f) => match schema.get(on).and_then(|t| t.get(&f.name)) {
                    None => errors.push(format!("{on}.{}", f.name)),
                    Some((args, ty)) => {
                        for (a, _) in &f.arguments {
                            if !args.contains(a) {
                                errors.push(format!("{on}.{}({a}:)", f.name));
                            }
                        }
                        walk(ty, &f.selection_set, doc, errors);
                    }
                },
                Selection::InlineFragment(i) => {
                    let ty = match &i.type_condition {
                        Some(TypeCondition::On(t)) => t.as_str(),
                        None => on,
                    };
                    walk(ty, &i.selection_set, doc, errors);
                }
                Selection::FragmentSpread(s) => {
                    for def in &doc.definitions {
                        if let Definition::Fragment(frag) = def
                            && frag.name == s.fragment_name
                        {
                            let TypeCondition::On(t) = &frag.type_condition;
                            walk(t, &frag.selection_set, doc, errors);
                        }
                    }
                }
            }
        }
    }
    let parsed = graphql_parser::parse_query::<String>(doc).expect("the document parses");
    let mut errors = Vec::new();
    for def in &parsed.definitions {
        if let Definition::Operation(op) = def {
            let set = match op {
                OperationDefinition::Query(q) => &q.selection_set,
                OperationDefinition::SelectionSet(s) => s,
                _ => continue,
            };
            walk("Query", set, &parsed, &mut errors);
        }
    }
    errors
}

#[test]
fn the_documents_these_tests_send_use_only_github_s_fields() {
    // GIVEN the documents of the tests above, and one with an invented field
    let history = "history(first: 4, after: $after, since: $since) { totalCount nodes { oid message committedDate author { name user { login } } } pageInfo { hasNextPage endCursor } }";
    let docs = [
        "query D($after: String) { repository(owner: \"o\", name: \"r\") { deployments(first: 4, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { databaseId createdAt latestStatus { state createdAt updatedAt } } pageInfo { hasNextPage endCursor } } } }".to_owned(),
        format!("query H($after: String, $since: GitTimestamp) {{ repository(owner: \"o\", name: \"r\") {{ defaultBranchRef {{ name target {{ ... on Commit {{ {history} }} }} }} b: ref(qualifiedName: \"refs/heads/main\") {{ name target {{ ... on Commit {{ {history} }} }} }} }} }}"),
        "query J($ids: [ID!]!) { nodes(ids: $ids) { __typename ... on WorkflowRun { databaseId checkSuite { all: checkRuns(filterBy: {checkType: ALL}) { totalCount } done: checkRuns(filterBy: {checkType: ALL, status: COMPLETED}) { totalCount } } } } }".to_owned(),
        "{ organization(login: \"o\") { repositories(first: 2, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { databaseId nameWithOwner } } } repository(owner: \"o\", name: \"r\") { pullRequests(first: 100) { nodes { number reviews { totalCount } } edges { node { number } } } } }".to_owned(),
        "{ node(id: \"WFR_1\") { ... on WorkflowRun { id runNumber event createdAt updatedAt url resourcePath checkSuite { databaseId id status conclusion createdAt updatedAt workflowRun { databaseId } checkRuns(first: 10, filterBy: {checkType: LATEST, statuses: [COMPLETED], conclusions: [SUCCESS], checkName: \"build\"}) { nodes { databaseId id name status conclusion startedAt completedAt } } } } } }".to_owned(),
        "{ repository(owner: \"o\", name: \"r\") { deployments(first: 1, environments: [\"production\"]) { nodes { id databaseId createdAt updatedAt environment latestEnvironment originalEnvironment task commitOid description payload state creator { login } ref { name } latestStatus { id state environment createdAt updatedAt description logUrl environmentUrl creator { login } } statuses(first: 5) { totalCount } } } defaultBranchRef { id prefix target { ... on Commit { oid abbreviatedOid id message messageHeadline messageBody committedDate authoredDate url committer { name email date } history(first: 1, since: \"2024-01-01T00:00:00Z\", until: \"2024-02-01T00:00:00Z\") { totalCount } } } } } }".to_owned(),
    ];
    // WHEN each is checked against GitHub's schema THEN only the invented field is refused
    for doc in &docs {
        assert_eq!(schema_errors(doc), Vec::<String>::new(), "{doc}");
    }
    assert_eq!(
        schema_errors("{ repository(owner: \"o\", name: \"r\") { deployments(first: 1) { nodes { latestState } } } }"),
        vec!["Deployment.latestState"]
    );
    assert_eq!(
        schema_errors(
            "{ nodes(ids: []) { ... on WorkflowRun { checkSuite { checkRuns(filter: {}) { totalCount } } } } }"
        ),
        vec!["CheckSuite.checkRuns(filter:)"]
    );
}

#[tokio::test]
async fn every_field_the_schema_test_names_is_served() {
    // GIVEN the broadest document of the schema test, against a real repository and run
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 3, ..OrgSpec::default() }).await.unwrap();
    let run = hub.org().repos[0].runs[0].node_id.clone();
    let q = "{ node(id: \"RUN\") { ... on WorkflowRun { id runNumber event createdAt updatedAt url resourcePath checkSuite { databaseId id status conclusion createdAt updatedAt workflowRun { databaseId } checkRuns(first: 10, filterBy: {checkType: LATEST}) { nodes { databaseId id name status conclusion startedAt completedAt } } } } }
              repository(owner: \"octo-org\", name: \"repo-0\") { deployments(first: 1, environments: [\"production\", \"staging\"]) { nodes { id databaseId createdAt updatedAt environment latestEnvironment originalEnvironment task commitOid description payload state creator { login } ref { name } latestStatus { id state environment createdAt updatedAt description logUrl environmentUrl creator { login } } statuses(first: 5) { totalCount } } } defaultBranchRef { id prefix target { ... on Commit { oid abbreviatedOid id message messageHeadline messageBody committedDate authoredDate url committer { name email date } history(first: 1, since: \"2000-01-01T00:00:00Z\", until: \"2030-02-01T00:00:00Z\") { totalCount } } } } } }"
        .replace("RUN", &run);
    assert_eq!(schema_errors(&q), Vec::<String>::new());
    // WHEN it is asked THEN every field resolves, without an error
    let out: Value = graphql(&hub, &q).await.json().await.unwrap();
    assert_eq!(out.get("errors"), None, "{out}");
    assert_eq!(out["data"]["node"]["id"], run.as_str());
    assert!(out["data"]["node"]["checkSuite"]["checkRuns"]["nodes"].as_array().is_some_and(|n| !n.is_empty()));
    assert_eq!(out["data"]["repository"]["defaultBranchRef"]["target"]["history"]["totalCount"], 20);
}

#[tokio::test]
async fn a_default_branch_generated_without_history_counts_none_everywhere() {
    // GIVEN repositories generated with no default-branch commits
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 2, commits: 0, ..OrgSpec::default() }).await.unwrap();
    // WHEN GitHub's history is asked and the webhook history is normalised
    let out: Value = graphql(&hub, "{ repository(owner: \"octo-org\", name: \"repo-0\") { defaultBranchRef { target { oid ... on Commit { history(first: 5) { totalCount nodes { oid } } } } } } }")
        .await
        .json()
        .await
        .unwrap();
    let main_commits = normalised(&hub.history(false))
        .into_iter()
        .filter(|c| matches!(c, octoscope::domain::Change::Commit { branch, .. } if branch.as_deref() == Some("main")))
        .count();
    // THEN both say none, and the head is still there
    let target = &out["data"]["repository"]["defaultBranchRef"]["target"];
    assert_eq!(target["history"]["totalCount"], 0, "{out}");
    assert_eq!(target["oid"], hub.org().repos[0].branches[0].head_sha.as_str());
    assert_eq!(main_commits, 0);
}

#[tokio::test]
async fn a_re_run_lists_its_latest_attempt_by_default_and_every_attempt_when_asked() {
    // GIVEN a run that was re-run (its first attempt's jobs kept)
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 0, runs: 60, ..OrgSpec::default() }).await.unwrap();
    let run = hub.org().repos[0].runs.iter().find(|r| r.run_attempt == 2).expect("a re-run among 60 runs").clone();
    let latest: Vec<i64> = run.jobs.iter().filter(|j| j.run_attempt == 2).map(|j| j.id).collect();
    let all: Vec<i64> = run.jobs.iter().map(|j| j.id).collect();
    assert!(latest.len() < all.len());
    let ids = |b: &Value| b["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect::<Vec<_>>();
    // WHEN its jobs are listed without a filter, with filter=latest and with filter=all
    let base = format!("/repos/octo-org/repo-0/actions/runs/{}/jobs", run.id);
    let plain: Value = get(&hub, &base, None).await.json().await.unwrap();
    let explicit: Value = get(&hub, &format!("{base}?filter=latest"), None).await.json().await.unwrap();
    let every: Value = get(&hub, &format!("{base}?filter=all"), None).await.json().await.unwrap();
    // THEN the default is the latest attempt, as on GitHub, and `all` adds the first attempt
    assert_eq!((ids(&plain), plain["total_count"].as_u64()), (latest.clone(), Some(latest.len() as u64)));
    assert_eq!(ids(&explicit), latest);
    assert_eq!((ids(&every), every["total_count"].as_u64()), (all.clone(), Some(all.len() as u64)));
    assert_eq!(get(&hub, &format!("{base}?filter=some"), None).await.status(), 422);
    // AND GraphQL's check runs say the same: LATEST (the default) and ALL
    let q = "query R($ids: [ID!]!) { nodes(ids: $ids) { ... on WorkflowRun { checkSuite {
               plain: checkRuns { totalCount } latest: checkRuns(filterBy: {checkType: LATEST}) { totalCount }
               all: checkRuns(filterBy: {checkType: ALL}) { totalCount } } } } }";
    let out = graphql_vars(&hub, q, json!({ "ids": [run.node_id] })).await;
    let suite = &out["data"]["nodes"][0]["checkSuite"];
    assert_eq!(
        (
            suite["plain"]["totalCount"].as_u64(),
            suite["latest"]["totalCount"].as_u64(),
            suite["all"]["totalCount"].as_u64()
        ),
        (Some(latest.len() as u64), Some(latest.len() as u64), Some(all.len() as u64)),
        "{out}"
    );
}

/// A client that does not follow redirects, to see GitHub's 301 itself.
async fn get_unfollowed(hub: &FakeHub, path: &str) -> reqwest::Response {
    let client = octoscope_fakehub::http().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(format!("{}{path}", hub.url)).bearer_auth(hub.token()).send().await.unwrap()
}

#[tokio::test]
async fn a_renamed_repository_answers_to_its_former_name_on_graphql_and_rest() {
    // GIVEN a repository with runs and deployments, renamed
    let hub = FakeHub::start(OrgSpec { deployments: 3, ..small() }).await.unwrap();
    let (id, run, deployment) = {
        let org = hub.org();
        let r = &org.repos[0];
        (r.id, r.runs[0].id, r.deployments[0].id)
    };
    hub.rename_repo("octo-org/repo-0", "shiny").unwrap();
    assert_eq!(hub.org().repos[0].full_name(), "octo-org/shiny");
    assert_eq!(hub.org().repos[0].former_names(), vec!["octo-org/repo-0".to_owned()]);

    // WHEN GraphQL is asked for it under its former name (in another case too)
    let out: Value = graphql(
        &hub,
        "{ a: repository(owner: \"octo-org\", name: \"repo-0\") { nameWithOwner databaseId }
           b: repository(owner: \"Octo-Org\", name: \"REPO-0\") { nameWithOwner }
           c: repository(owner: \"octo-org\", name: \"shiny\") { nameWithOwner databaseId } }",
    )
    .await
    .json()
    .await
    .unwrap();
    // THEN it resolves to the repository under its new name, with its id
    assert_eq!(
        (&out["data"]["a"]["nameWithOwner"], &out["data"]["a"]["databaseId"]),
        (&json!("octo-org/shiny"), &json!(id))
    );
    assert_eq!(out["data"]["b"]["nameWithOwner"], "octo-org/shiny");
    assert_eq!(out["data"]["c"]["databaseId"], id);

    // WHEN REST is asked under the former name
    for (path, rest) in [
        ("/repos/octo-org/repo-0/actions/runs?per_page=2", "/actions/runs?per_page=2".to_owned()),
        (&*format!("/repos/octo-org/repo-0/actions/runs/{run}/jobs"), format!("/actions/runs/{run}/jobs")),
        ("/repos/octo-org/repo-0/deployments", "/deployments".to_owned()),
        (
            &*format!("/repos/octo-org/repo-0/deployments/{deployment}/statuses"),
            format!("/deployments/{deployment}/statuses"),
        ),
        ("/repos/octo-org/repo-0/hooks", "/hooks".to_owned()),
    ] {
        let moved = get_unfollowed(&hub, path).await;
        // THEN it answers 301 to the same path and query under /repositories/{id}
        assert_eq!(moved.status(), 301, "{path}");
        let location = header(&moved, "location");
        assert_eq!(location, format!("{}/repositories/{id}{rest}", hub.url), "{path}");
        // AND that serves what the new name serves
        let by_id = get(&hub, location.strip_prefix(&hub.url).unwrap(), None).await;
        assert_eq!(by_id.status(), 200, "{location}");
        let by_name = get(&hub, &format!("/repos/octo-org/shiny{rest}"), None).await;
        assert_eq!(by_name.status(), 200, "{rest}");
        assert_eq!(by_id.json::<Value>().await.unwrap(), by_name.json::<Value>().await.unwrap(), "{rest}");
    }
    // AND the redirects were counted (and charged) under the endpoint asked
    assert_eq!(hub.requests("GET /repos/{owner}/{repo}/actions/runs"), 2);
    assert_eq!(hub.requests("GET /repositories/{repo_id}/actions/runs"), 1);
    // AND under GitHub Enterprise Server's prefix the Location keeps it
    let moved = get_unfollowed(&hub, "/api/v3/repos/octo-org/repo-0/deployments?per_page=1").await;
    assert_eq!(header(&moved, "location"), format!("{}/api/v3/repositories/{id}/deployments?per_page=1", hub.url));
    // AND a name no repository ever had is still not found, nor is an unknown id
    assert_eq!(get_unfollowed(&hub, "/repos/octo-org/never/actions/runs").await.status(), 404);
    assert_eq!(get_unfollowed(&hub, "/repositories/1/actions/runs").await.status(), 404);
}

#[tokio::test]
async fn a_move_to_a_taken_or_unknown_name_is_refused_and_changes_nothing() {
    // GIVEN two repositories
    let hub = FakeHub::start(small()).await.unwrap();
    let before = hub.org().clone();
    // WHEN one is renamed to the other's name, a missing one renamed, or one moved onto its own name
    let taken = hub.rename_repo("octo-org/repo-0", "repo-1");
    let missing = hub.transfer_repo("octo-org/nope", "someone");
    let same = hub.transfer_repo("octo-org/repo-0", "octo-org");
    // THEN each is refused and the truth is as it was
    assert!(taken.unwrap_err().to_string().contains("taken"));
    assert!(missing.is_err() && same.is_err());
    assert_eq!(*hub.org(), before);
}

#[tokio::test]
async fn a_transferred_repository_belongs_to_its_new_owner() {
    // GIVEN three repositories, one transferred to another account
    let hub = FakeHub::start(OrgSpec { repos: 3, ..small() }).await.unwrap();
    let id = hub.org().repos[1].id;
    hub.transfer_repo("octo-org/repo-1", "someone-else").unwrap();
    // WHEN the organisation's repositories and the repository under its former name are asked
    let out: Value = graphql(
        &hub,
        "{ organization(login: \"octo-org\") { repositories(first: 10) { totalCount nodes { nameWithOwner } } }
           repository(owner: \"octo-org\", name: \"repo-1\") { nameWithOwner databaseId } }",
    )
    .await
    .json()
    .await
    .unwrap();
    // THEN it has left the organisation's listing, and the former name resolves to its new owner's
    let names: Vec<&str> = out["data"]["organization"]["repositories"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["nameWithOwner"].as_str())
        .collect();
    assert_eq!(names, vec!["octo-org/repo-0", "octo-org/repo-2"], "{out}");
    assert_eq!(out["data"]["organization"]["repositories"]["totalCount"], 2);
    assert_eq!(out["data"]["repository"]["nameWithOwner"], "someone-else/repo-1");
    assert_eq!(out["data"]["repository"]["databaseId"], id);
    // AND REST under the former name redirects to it by id
    let moved = get_unfollowed(&hub, "/repos/octo-org/repo-1/actions/runs").await;
    assert_eq!(
        (moved.status().as_u16(), header(&moved, "location")),
        (301, format!("{}/repositories/{id}/actions/runs", hub.url))
    );
    assert_eq!(get(&hub, "/repos/someone-else/repo-1/actions/runs", None).await.status(), 200);
}

#[tokio::test]
async fn moves_are_repository_events_and_each_event_carries_the_name_of_its_time() {
    // GIVEN a repository renamed a third into its history and transferred two thirds in
    let hub = FakeHub::start(OrgSpec { repos: 2, pulls: 20, runs: 10, ..small() }).await.unwrap();
    let id = hub.org().repos[0].id;
    let mut times: Vec<_> =
        hub.history(false).iter().filter(|e| e.payload["repository"]["id"] == id).map(|e| e.at).collect();
    times.sort();
    let (renamed_at, transferred_at) = (times[times.len() / 3], times[2 * times.len() / 3]);
    assert!(renamed_at < transferred_at, "the test needs two distinct times");
    hub.rename_repo_at("octo-org/repo-0", "renamed", renamed_at).unwrap();
    hub.transfer_repo_at("octo-org/renamed", "someone-else", transferred_at).unwrap();

    // WHEN the history is built
    let history = hub.history(false);
    // THEN the rename and the transfer are `repository` events shaped like GitHub's, at their times
    let moves: Vec<&octoscope_fakehub::Event> = history.iter().filter(|e| e.name == "repository").collect();
    assert_eq!(moves.len(), 2);
    let (renamed, transferred) = (&moves[0].payload, &moves[1].payload);
    assert_eq!((moves[0].action.as_deref(), moves[0].at), (Some("renamed"), renamed_at));
    assert_eq!(renamed["changes"]["repository"]["name"]["from"], "repo-0");
    assert_eq!(
        (&renamed["repository"]["full_name"], &renamed["repository"]["id"]),
        (&json!("octo-org/renamed"), &json!(id))
    );
    assert_eq!(renamed["organization"]["login"], "octo-org");
    assert_eq!((moves[1].action.as_deref(), moves[1].at), (Some("transferred"), transferred_at));
    assert_eq!(transferred["changes"]["owner"]["from"]["organization"]["login"], "octo-org");
    assert_eq!(transferred["repository"]["full_name"], "someone-else/renamed");
    assert_eq!(transferred["repository"]["owner"]["login"], "someone-else");
    assert!(transferred.get("organization").is_none(), "the repository is no longer the organisation's");
    // AND every other event of the repository carries the name it had then, each name some events
    let mut per_name: std::collections::BTreeMap<String, usize> = Default::default();
    for e in history.iter().filter(|e| e.name != "repository" && e.payload["repository"]["id"] == id) {
        let want = if e.at < renamed_at {
            "octo-org/repo-0"
        } else if e.at < transferred_at {
            "octo-org/renamed"
        } else {
            "someone-else/renamed"
        };
        assert_eq!(e.payload["repository"]["full_name"], want, "{} {:?} at {}", e.name, e.action, e.at);
        *per_name.entry(want.to_owned()).or_default() += 1;
    }
    assert_eq!(per_name.len(), 3, "{per_name:?}");
    // AND no event of the repository was lost or doubled by the moves
    assert_eq!(history.len(), times.len() + 2 + history.iter().filter(|e| e.payload["repository"]["id"] != id).count());

    // WHEN the history is sent with `repository` events lost
    let spec = WebhookSpec { lost_events: vec!["repository".into()], ..WebhookSpec::default() };
    let report = hub.send_webhooks("http://127.0.0.1:9/unreachable", &spec).await.unwrap();
    // THEN the moves are neither sent nor logged
    assert_eq!(report.lost, 2);
    assert!(hub.deliveries().iter().all(|d| d.event != "repository"));
}

/// An installation token of `hub`'s app for installation `id` (minted with the app's JWT).
async fn installation_token(hub: &FakeHub, id: u64) -> String {
    narrowed_token(hub, id, json!({})).await
}

/// An installation token minted with GitHub's narrowing `body` (`repositories`, `permissions`).
async fn narrowed_token(hub: &FakeHub, id: u64, body: Value) -> String {
    let key = octoscope::adapters::github::jwt::AppKey::from_pem(octoscope_fakehub::TEST_APP_PRIVATE_KEY).unwrap();
    let jwt = key.jwt(hub.app().app_id, chrono::Utc::now()).unwrap();
    let minted: Value = octoscope_fakehub::http()
        .build()
        .unwrap()
        .post(format!("{}/app/installations/{id}/access_tokens", hub.url))
        .bearer_auth(jwt)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minted["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_installation_sees_its_own_account_only_and_spends_its_own_budget() {
    // GIVEN the app installed on the organisation and on another account that owns one repository
    let app = octoscope_fakehub::AppSpec {
        more_installations: vec![octoscope_fakehub::InstallationSpec { id: 77_002, account: "other-org".into() }],
        ..octoscope_fakehub::AppSpec::default()
    };
    let hub = FakeHub::start_with(small(), HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let org = hub.org().login.clone();
    hub.transfer_repo(&format!("{org}/repo-1"), "other-org").unwrap();
    let ours = installation_token(&hub, hub.app().installation_id).await;
    let theirs = installation_token(&hub, 77_002).await;
    let client = octoscope_fakehub::http().build().unwrap();
    let rest = |token: &str, repo: &str| {
        client.get(format!("{}/repos/{repo}/actions/runs", hub.url)).bearer_auth(token.to_owned()).send()
    };
    let query = |token: &str, owner: &str, name: &str| {
        let q = format!("query Q {{ repository(owner: \"{owner}\", name: \"{name}\") {{ name }} }}");
        client.post(format!("{}/graphql", hub.url)).bearer_auth(token.to_owned()).json(&json!({ "query": q })).send()
    };

    // WHEN each installation reads its own repository and the other's
    let own_rest = rest(&ours, &format!("{org}/repo-0")).await.unwrap();
    let foreign_rest = rest(&ours, "other-org/repo-1").await.unwrap();
    let own_graphql: Value = query(&theirs, "other-org", "repo-1").await.unwrap().json().await.unwrap();
    let foreign_graphql: Value = query(&theirs, &org, "repo-0").await.unwrap().json().await.unwrap();

    // THEN its own is served; the other's is what GitHub answers: 404, or null with NOT_FOUND
    assert_eq!(own_rest.status(), 200);
    assert_eq!(foreign_rest.status(), 404);
    assert_eq!(own_graphql["data"]["repository"]["name"], "repo-1", "{own_graphql}");
    assert_eq!(foreign_graphql["data"]["repository"], Value::Null, "{foreign_graphql}");
    assert_eq!(foreign_graphql["errors"][0]["type"], "NOT_FOUND", "{foreign_graphql}");
    // AND both foreign reads are recorded, each request counted for its installation, each with its own budget
    let foreign = hub.foreign_reads();
    assert_eq!(foreign.len(), 2, "{foreign:?}");
    assert_eq!(foreign[0], (org.clone(), "GET /repos/other-org/repo-1/actions/runs".to_owned()));
    assert_eq!(foreign[1].0, "other-org");
    let per = hub.installation_requests();
    assert_eq!((per.get(&org), per.get("other-org")), (Some(&2), Some(&2)), "{per:?}");
    assert_eq!(header(&own_rest, "x-ratelimit-remaining"), "4999", "the organisation's own core budget");
    hub.exhaust_budget("other-org", "core");
    assert_eq!(
        rest(&ours, &format!("{org}/repo-0")).await.unwrap().status(),
        200,
        "the other's spent budget is not ours"
    );
    assert_eq!(rest(&theirs, "other-org/repo-1").await.unwrap().status(), 403);
}

#[tokio::test]
async fn graphql_answers_a_narrowed_token_as_github_does() {
    // GIVEN a token narrowed to repo-0 and to metadata and pull requests
    let hub = FakeHub::start(small()).await.unwrap();
    let org = hub.org().login.clone();
    let body = json!({ "repositories": ["repo-0"], "permissions": { "metadata": "read", "pull_requests": "read" } });
    let token = narrowed_token(&hub, hub.app().installation_id, body).await;
    let client = octoscope_fakehub::http().build().unwrap();
    let ask = |q: String| {
        let req = client.post(format!("{}/graphql", hub.url)).bearer_auth(token.clone()).json(&json!({ "query": q }));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // WHEN it lists the organisation's repositories, reads each, and asks for what needs other permissions
    let listed =
        ask(format!("query {{ organization(login: \"{org}\") {{ repositories(first: 10) {{ nodes {{ name }} }} }} }}"))
            .await;
    let own = ask(format!(
        "query {{ repository(owner: \"{org}\", name: \"repo-0\") {{ pullRequests(first: 1) {{ totalCount }} \
         deployments(first: 1) {{ totalCount }} }} }}"
    ))
    .await;
    let pulls = ask(format!(
        "query {{ repository(owner: \"{org}\", name: \"repo-0\") {{ pullRequests(first: 1) {{ totalCount }} }} }}"
    ))
    .await;
    let other = ask(format!("query {{ repository(owner: \"{org}\", name: \"repo-1\") {{ name }} }}")).await;
    let teams =
        ask(format!("query {{ organization(login: \"{org}\") {{ teams(first: 10) {{ totalCount }} }} }}")).await;

    // THEN the list holds only its repository, and another does not resolve
    assert_eq!(listed["data"]["organization"]["repositories"]["nodes"], json!([{ "name": "repo-0" }]), "{listed}");
    assert_eq!(other["data"]["repository"], Value::Null, "{other}");
    assert_eq!(other["errors"][0]["type"], "NOT_FOUND", "{other}");
    // AND what its permissions cover is served
    assert_eq!(pulls["data"]["repository"]["pullRequests"]["totalCount"], 10, "{pulls}");
    assert!(pulls.get("errors").is_none(), "{pulls}");
    // AND a field they do not cover is GitHub's FORBIDDEN at its path; the
    // field being non-null, the object holding it is null (the spec's null propagation)
    assert_eq!(own["data"]["repository"], Value::Null, "{own}");
    assert_eq!(own["errors"][0]["type"], "FORBIDDEN", "{own}");
    assert_eq!(own["errors"][0]["path"], json!(["repository", "deployments"]), "{own}");
    assert_eq!(own["errors"][0]["message"], "Resource not accessible by integration");
    assert_eq!(teams["data"]["organization"], Value::Null, "{teams}");
    assert_eq!(teams["errors"][0]["type"], "FORBIDDEN", "{teams}");
    assert_eq!(teams["errors"][0]["path"], json!(["organization", "teams"]), "{teams}");
}

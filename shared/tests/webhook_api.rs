//! The webhook endpoint and read API, end to end through the router, on SQLite.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use octoscope::webhook::sign;
use serde_json::{Value, json};

async fn counts(app: &TestApp) -> Value {
    let (status, health) = app.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    health["stats"].clone()
}

#[tokio::test]
async fn every_example_payload_is_accepted_and_none_gets_a_5xx() {
    // GIVEN a fresh server WHEN every GitHub example payload is delivered signed
    let app = TestApp::new();
    let fixtures = all_fixtures();
    assert!(fixtures.len() > 250, "the vendored examples are all there");
    let mut stored = 0;
    for (event, name, body) in &fixtures {
        let (status, resp) = app.deliver(event, body).await;
        // THEN each gets a 2xx, and a tracked event is stored, not failed
        assert!(status.is_success(), "{event}/{name}: {status} {resp}");
        if octoscope::webhook::is_tracked(event) {
            assert_eq!(resp["status"], "stored", "{event}/{name}: {resp}");
            stored += 1;
        } else {
            assert_eq!((status, resp["status"].as_str()), (StatusCode::ACCEPTED, Some("ignored")), "{event}/{name}");
        }
    }
    let stats = counts(&app).await;
    assert_eq!(stats["deliveries"]["stored"], stored);
    assert_eq!(stats["deliveries"]["ignored"], fixtures.len() - stored);
    assert!(stats["deliveries"].get("failed").is_none(), "{stats}");
    assert!(stats["ignored_events"]["issues"].as_u64().unwrap() > 0, "ignored events are counted by type");

    // AND the read API shows what they said
    let repos = app.all("/api/repos").await;
    let hello =
        repos.iter().find(|r| r["full_name"] == "Codertocat/Hello-World").expect("Codertocat/Hello-World listed");
    assert_eq!(hello["default_branch"], "master");
    assert!(hello["last_activity_at"].is_string());
    let pulls = app.all("/api/pulls?repo=Codertocat/Hello-World&state=all").await;
    assert!(!pulls.is_empty());
    for p in &pulls {
        for field in [
            "repo",
            "number",
            "title",
            "state",
            "draft",
            "author",
            "created_at",
            "updated_at",
            "closed_at",
            "merged_at",
            "additions",
            "deletions",
        ] {
            assert!(p.get(field).is_some(), "pull lacks {field}: {p}");
        }
    }
    let (status, pr) = app.get("/api/pulls/Codertocat/Hello-World/2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pr["reviews"][0]["author"], "Codertocat");
    assert_eq!(pr["reviews"][0]["state"], "dismissed", "the dismissal outranks the submission of the same time");
    let teams = app.all("/api/teams?org=Octocoders").await;
    assert!(teams.iter().any(|t| t["slug"] == "github"), "{teams:?}");
    let runs = app.all("/api/workflow-runs?repo=octo-org/octo-repo").await;
    assert!(runs.iter().any(|r| r["status"] == "completed" && r["duration_seconds"].is_number()), "{runs:?}");
    let commits = app.all("/api/commits?repo=Codertocat/Hello-World&branch=master").await;
    assert!(!commits.is_empty(), "pushed commits are listed by branch");
    let branches: Vec<&str> =
        hello["branches"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert!(branches.contains(&"master") && !branches.contains(&"simple-tag"), "tags are not branches: {branches:?}");
    let deliveries = app.all("/api/deliveries?limit=100").await;
    assert_eq!(deliveries.len(), fixtures.len());
}

#[tokio::test]
async fn hostile_requests_get_their_4xx_and_leave_the_store_unchanged() {
    // GIVEN a server holding one delivery, and a small body limit
    let app = TestApp::with(Options { max_body_bytes: 64 * 1024, ..Options::default() });
    let body = fixture("pull_request", "opened.payload.json");
    assert_eq!(app.deliver("pull_request", &body).await.0, StatusCode::OK);
    let before = counts(&app).await;
    let good = sign(SECRET, &body);
    let big = vec![b' '; 65 * 1024];
    let big_sig = sign(SECRET, &big);
    let malformed = br#"{"action": "opened", "pull_request": "#.to_vec();
    let malformed_sig = sign(SECRET, &malformed);
    let wrong = sign("wrong secret", &body);
    let cases: Vec<(&str, Request<Body>, StatusCode)> = vec![
        ("no signature", webhook_request("pull_request", &body, &uuid(), None), StatusCode::UNAUTHORIZED),
        ("wrong secret", webhook_request("pull_request", &body, &uuid(), Some(&wrong)), StatusCode::UNAUTHORIZED),
        (
            "truncated",
            webhook_request("pull_request", &body, &uuid(), Some(&good[..good.len() - 8])),
            StatusCode::UNAUTHORIZED,
        ),
        ("empty", webhook_request("pull_request", &body, &uuid(), Some("")), StatusCode::UNAUTHORIZED),
        (
            "not hex",
            webhook_request("pull_request", &body, &uuid(), Some(&format!("sha256={}", "zz".repeat(32)))),
            StatusCode::UNAUTHORIZED,
        ),
        ("other body", webhook_request("pull_request", b"{}", &uuid(), Some(&good)), StatusCode::UNAUTHORIZED),
        ("oversize", webhook_request("pull_request", &big, &uuid(), Some(&big_sig)), StatusCode::PAYLOAD_TOO_LARGE),
        (
            "malformed json",
            webhook_request("pull_request", &malformed, &uuid(), Some(&malformed_sig)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "malformed json, unknown event",
            webhook_request("gollum", &malformed, &uuid(), Some(&malformed_sig)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad delivery id",
            webhook_request("pull_request", &body, "not a guid!", Some(&good)),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (label, req, expected) in cases {
        let (status, resp) = app.send(req).await;
        // THEN each is refused with its status and a message
        assert_eq!(status, expected, "{label}: {resp}");
        assert!(resp["error"].is_string(), "{label}: {resp}");
    }
    let missing_event = Request::post("/webhook")
        .header("x-github-delivery", uuid())
        .header("x-hub-signature-256", good.clone())
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, resp) = app.send(missing_event).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert!(resp["error"].as_str().unwrap().contains("X-GitHub-Event"));
    // AND nothing was stored or archived
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.archive_len().await, 1);
}

#[tokio::test]
async fn the_same_delivery_twice_has_one_effect() {
    // GIVEN one delivery id WHEN it arrives twice THEN the second is a duplicate with no effect
    let app = TestApp::new();
    let body = fixture("pull_request_review", "submitted.payload.json");
    let id = uuid();
    let (s1, r1) = app.deliver_as("pull_request_review", &body, &id).await;
    let (s2, r2) = app.deliver_as("pull_request_review", &body, &id).await;
    assert_eq!((s1, r1["status"].as_str()), (StatusCode::OK, Some("stored")));
    assert_eq!((s2, r2["status"].as_str()), (StatusCode::OK, Some("duplicate")), "{r2}");
    assert_eq!(r2["first_outcome"], "stored");
    assert_eq!(app.all("/api/deliveries").await.len(), 1);
    assert_eq!(app.archive_len().await, 1);
    // AND the same id from another hook is a different delivery
    let other_hook = Request::post("/webhook")
        .header("x-github-event", "pull_request_review")
        .header("x-github-delivery", id.as_str())
        .header("x-github-hook-id", "42")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(app.send(other_hook).await.1["status"], "stored");
}

/// Real payloads of one pull request, oldest to newest `updated_at`.
const PR_HISTORY: [&str; 5] = [
    "opened.payload.json",
    "labeled.payload.json",
    "locked.payload.json",
    "unlocked.payload.json",
    "closed.payload.json",
];

async fn pull_after(order: &[usize]) -> Value {
    let app = TestApp::new();
    for &i in order {
        let (status, resp) = app.deliver("pull_request", &fixture("pull_request", PR_HISTORY[i])).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
    }
    app.get("/api/pulls/Codertocat/Hello-World/2").await.1
}

#[tokio::test]
async fn pull_request_payloads_in_any_order_leave_the_newest_state() {
    // GIVEN the real payloads delivered oldest first
    let forward = pull_after(&[0, 1, 2, 3, 4]).await;
    assert_eq!(forward["state"], "closed");
    assert_eq!(forward["updated_at"], "2019-05-15T15:21:18Z");
    // WHEN they arrive newest first THEN the pull request is the same
    let reverse = pull_after(&[4, 3, 2, 1, 0]).await;
    assert_eq!(reverse, forward);
    // AND so for every one of the 120 orders
    let mut orders = Vec::new();
    permutations(&mut vec![0, 1, 2, 3, 4], 0, &mut orders);
    assert_eq!(orders.len(), 120);
    for o in orders {
        assert_eq!(pull_after(&o).await, forward, "order {o:?}");
    }
}

fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out);
        v.swap(k, i);
    }
}

#[tokio::test]
async fn an_older_merge_state_never_regresses_a_newer_one() {
    // GIVEN a merged pull request WHEN an older "opened" for it arrives late THEN it stays merged
    let app = TestApp::new();
    let mut merged: Value = serde_json::from_slice(&fixture("pull_request", "closed.payload.json")).unwrap();
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!("2019-05-15T15:21:18Z");
    merged["pull_request"]["title"] = json!("merged title");
    app.deliver("pull_request", merged.to_string().as_bytes()).await;
    let (status, _) = app.deliver("pull_request", &fixture("pull_request", "opened.payload.json")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, pr) = app.get("/api/pulls/Codertocat/Hello-World/2").await;
    assert_eq!((pr["state"].as_str(), pr["title"].as_str()), (Some("merged"), Some("merged title")));
    assert_eq!(pr["merged_at"], "2019-05-15T15:21:18Z");
    let merged_only = app.all("/api/pulls?state=merged").await;
    assert_eq!(merged_only.len(), 1);
    assert!(app.all("/api/pulls?state=open").await.is_empty());
}

#[tokio::test]
async fn form_encoded_deliveries_are_understood() {
    // GIVEN a hook with content type application/x-www-form-urlencoded
    let app = TestApp::new();
    let json = fixture("pull_request", "opened.payload.json");
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let req = Request::post("/webhook")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", uuid())
        .header("x-hub-signature-256", sign(SECRET, body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    // WHEN delivered THEN it is stored like the JSON form
    let (status, resp) = app.send(req).await;
    assert_eq!((status, resp["status"].as_str()), (StatusCode::OK, Some("stored")), "{resp}");
    assert_eq!(app.get("/api/pulls/Codertocat/Hello-World/2").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_payload_of_an_unexpected_shape_is_archived_and_logged_as_failed() {
    // GIVEN a signed pull_request event that lacks the pull_request object
    let app = TestApp::new();
    let body = br#"{"action":"opened","repository":{"full_name":"octo/odd"}}"#;
    let (status, resp) = app.deliver("pull_request", body).await;
    // THEN it is acknowledged (it is archived, so replay can retry it), not a 5xx
    assert_eq!(status, StatusCode::ACCEPTED, "{resp}");
    assert_eq!(resp["status"], "failed");
    let failed = app.all("/api/deliveries?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["repo"], "octo/odd");
    assert!(failed[0]["reason"].as_str().unwrap().contains("pull_request"), "{}", failed[0]);
    assert_eq!(app.archive_len().await, 1);
}

/// Deliver the example `pull_request` opened event as pull requests 1..=n,
/// each pull request object shaped by `edit` first.
async fn deliver_pulls(app: &TestApp, n: u32, edit: impl Fn(&mut Value, u32)) {
    let base: Value = serde_json::from_slice(&fixture("pull_request", "opened.payload.json")).unwrap();
    for i in 1..=n {
        let mut p = base.clone();
        p["pull_request"]["number"] = json!(i);
        edit(&mut p["pull_request"], i);
        let (status, body) = app.deliver("pull_request", p.to_string().as_bytes()).await;
        assert!(status.is_success(), "pull request {i}: {status} {body}");
    }
}

#[tokio::test]
async fn lists_paginate_with_cursors_and_filters() {
    // GIVEN 25 pull requests by two authors
    let app = TestApp::new();
    deliver_pulls(&app, 25, |p, n| {
        p["updated_at"] = json!(format!("2020-01-01T00:00:{n:02}Z"));
        p["user"]["login"] = json!(if n % 2 == 0 { "even" } else { "odd" });
    })
    .await;
    // WHEN paged 10 at a time THEN every one comes once, newest first
    let (_, first) = app.get("/api/pulls?limit=10").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert_eq!(first["items"][0]["number"], 25);
    let all = app.all("/api/pulls?limit=10").await;
    let numbers: Vec<u64> = all.iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=25).rev().collect::<Vec<_>>());
    assert_eq!(app.all("/api/pulls?author=even&limit=3").await.len(), 12);
    assert_eq!(app.all("/api/pulls?repo=Codertocat/Hello-World&state=open").await.len(), 25);
    assert!(app.all("/api/pulls?repo=other/repo").await.is_empty());
}

#[tokio::test]
async fn a_cursor_this_server_did_not_issue_reads_as_the_end_of_the_list() {
    // GIVEN three pull requests, two to a page
    let app = TestApp::new();
    deliver_pulls(&app, 3, |_, _| {}).await;
    let (_, first) = app.get("/api/pulls?limit=2").await;
    let issued = first["next_cursor"].as_str().unwrap().to_owned();
    // WHEN any list is asked for a page after a cursor it never issued
    for path in [
        "/api/pulls?limit=2&cursor=garbage",
        "/api/pulls?cursor=",
        "/api/repos?cursor=0000",
        "/api/teams?cursor=Zm9v",
        "/api/commits?repo=Codertocat/Hello-World&cursor=garbage",
        "/api/workflow-runs?cursor=garbage",
        "/api/deliveries?cursor=garbage",
    ] {
        let (status, body) = app.get(path).await;
        // THEN the answer is the end of the list: 200, no items, no next cursor
        if path.ends_with("cursor=") {
            // (an empty cursor is no cursor: the first page)
            assert_eq!((status, body["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{path}: {body}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body, json!({ "items": [], "next_cursor": null }), "{path}");
    }
    let (status, body) = app.get("/api/integrity?cursor=garbage").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["items"].clone(), body["next_cursor"].clone()), (json!([]), Value::Null), "{body}");
    // AND the longest cursor the grammar allows is a position too, one longer is a 400
    let longest = "A".repeat(4096);
    assert_eq!(app.get(&format!("/api/pulls?cursor={longest}")).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/pulls?cursor={longest}A")).await.0, StatusCode::BAD_REQUEST);
    // AND the cursor it issued still reads the rest
    let (status, rest) = app.get(&format!("/api/pulls?limit=2&cursor={issued}")).await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["items"][0]["number"], 1);
}

#[tokio::test]
async fn bad_queries_are_400_with_a_message_and_unknown_things_404() {
    let app = TestApp::new();
    for path in [
        "/api/pulls?state=weird",
        "/api/pulls?repo=not-a-repo",
        "/api/pulls?limit=0",
        "/api/pulls?limit=100000",
        "/api/pulls?stat=open",
        "/api/pulls?state=open&state=closed",
        "/api/pulls?cursor=0.5",
        "/api/repos?cursor=a%2Fb",
        "/api/commits",
        "/api/deliveries?status=great",
        "/api/pulls/Codertocat/Hello-World/not-a-number",
        // percent-decoding to bytes that are not UTF-8 (found by the api fuzz target)
        "/api/pulls/acm&e%deoai/mp/99199",
        "/api/pulls/Codertocat/Hello-World/%ff",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(!msg.is_empty() && !msg.contains("panicked"), "{path}: {msg}");
    }
    for path in ["/api/nothing", "/api/pulls/Codertocat/Hello-World/999", "/elsewhere"] {
        assert_eq!(app.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn with_tokens_every_api_call_needs_a_bearer_token_but_webhooks_do_not() {
    // GIVEN a server with API tokens
    let app =
        TestApp::with(Options { tokens: Some("first-token-0123456789,second-token-0123456789"), ..Options::default() });
    // THEN the API refuses calls without a valid token
    for auth in [None, Some("Bearer wrong-token-0123456789"), Some("Basic Zmlyc3Q=")] {
        let mut req = Request::get("/api/health");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (status, _) = app.send(req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    assert_eq!(app.get("/api/unknown").await.0, StatusCode::UNAUTHORIZED, "no probing for routes either");
    // AND accepts either token
    for token in ["first-token-0123456789", "second-token-0123456789"] {
        let req =
            Request::get("/api/repos").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
        assert_eq!(app.send(req).await.0, StatusCode::OK);
    }
    // AND webhooks are authenticated by their signature alone
    assert_eq!(app.deliver("pull_request", &fixture("pull_request", "opened.payload.json")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rotation_accepts_every_configured_secret() {
    let app = TestApp::with(Options { secrets: "old-secret,test-secret-one", ..Options::default() });
    let body = fixture("ping", "payload.json");
    for secret in ["old-secret", "test-secret-one"] {
        let req = webhook_request("ping", &body, &uuid(), Some(&sign(secret, &body)));
        assert_eq!(app.send(req).await.0, StatusCode::OK, "{secret}");
    }
    let req = webhook_request("ping", &body, &uuid(), Some(&sign("retired-secret", &body)));
    assert_eq!(app.send(req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn replay_rebuilds_the_store_from_the_archive() {
    // GIVEN a server that received every example
    let app = TestApp::new();
    for (event, _, body) in all_fixtures() {
        app.deliver(&event, &body).await;
    }
    let before = snapshot(&app).await;
    // WHEN the store is wiped and replayed from the archive
    let report = octoscope::services::replay::replay(app.store.clone(), app.archive.clone(), |_| {}).await.unwrap();
    assert_eq!(report.deliveries as usize, all_fixtures().len());
    assert_eq!(report.failed, 0);
    // THEN the API says exactly what it said before
    assert_eq!(snapshot(&app).await, before);
}

async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for path in
        ["/api/repos", "/api/pulls", "/api/teams", "/api/workflow-runs", "/api/commits?repo=Codertocat/Hello-World"]
    {
        out.push(Value::Array(app.all(path).await));
    }
    out.push(app.get("/api/pulls/Codertocat/Hello-World/2").await.1);
    out
}

//! `GET /api/search` over the real router and SQLite store: a delivery
//! acknowledged with 200 is searchable; a bad query is a 400, never a 5xx.

mod common;

use axum::http::StatusCode;
use common::*;

#[tokio::test]
async fn an_acknowledged_delivery_is_found_with_segments_and_facets() {
    // GIVEN GitHub's example pull_request "opened" delivery, acknowledged
    let app = TestApp::new();
    let (status, _) = app.deliver("pull_request", &fixture("pull_request", "opened.payload.json")).await;
    assert_eq!(status, StatusCode::OK);
    // WHEN searched for a word of its title, within its repository
    let (status, body) = app.get("/api/search?q=readme%20repo:Codertocat/Hello-World%20is:open").await;
    // THEN it is the hit, its title in plain-text segments with the word highlighted
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["key"], "pr:Codertocat/Hello-World#2");
    assert_eq!(body["items"][0]["type"], "pr");
    let marked: Vec<&str> = body["items"][0]["title_segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["highlighted"] == true)
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["README"]);
    assert_eq!(body["facets"]["type"][0], serde_json::json!({"value": "pr", "count": 1}));
    assert_eq!((&body["total"], &body["total_is_exact"]), (&1.into(), &true.into()));
}

#[tokio::test]
async fn bad_queries_are_400_with_a_reason_and_hostile_ones_never_5xx() {
    let app = TestApp::new();
    app.deliver("pull_request", &fixture("pull_request", "opened.payload.json")).await;
    for (q, needle) in [("repo:nope", "OWNER/NAME"), ("is:maybe", "is"), ("created:yesterday", "date")] {
        let (status, body) = app.get(&format!("/api/search?q={q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{q}: {body}");
    }
    let long = "x".repeat(10_000);
    for q in ["NEAR(readme", "*", "%5E", "title:readme", "%27%3B%20DROP%20TABLE%20pull_requests%3B--", long.as_str()] {
        let (status, body) = app.get(&format!("/api/search?q={q}")).await;
        assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{q}: {status} {body}");
    }
    // AND, as in GitHub's search box, a quote left open runs to the end and a
    // control character separates words: both are searches, not errors
    for q in ["%22readme", "readme%00", "%10readme%28"] {
        let (status, body) = app.get(&format!("/api/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    // AND the store still answers as before
    let (_, body) = app.get("/api/search?q=readme").await;
    assert_eq!(body["total"], 1);
    // AND a cursor this server did not issue reads as the end, with the facets
    let (status, body) = app.get("/api/search?q=readme&cursor=abc").await;
    assert_eq!((status, body["items"].as_array().unwrap().len(), &body["total"]), (StatusCode::OK, 0, &1.into()));
}

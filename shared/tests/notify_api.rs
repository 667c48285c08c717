//! The notification API (`/api/rules`, `/api/notifications`) on the real
//! router over a temporary SQLite store, driven with `oneshot`: rules are
//! created, read, replaced, tested, rotated and deleted; bodies are read
//! strictly; secrets show once; writes are guarded on a server without
//! tokens, and need a token on one with them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState, NotifyApi};
use octoscope::config::ApiTokens;
use octoscope::domain::RuleId;
use octoscope::ports::RuleStore;
use octoscope::services::IngestService;
use octoscope::webhook::WebhookSecrets;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "notify-api-test-token-0123456789";

struct App {
    router: Router,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl App {
    fn new() -> Self {
        Self::with(None, false, true)
    }

    fn with(tokens: Option<&str>, allow_private: bool, notify: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
        let archive = Arc::new(SqliteArchive::open(&dir.path().join("archive.db")).unwrap());
        let ingest = IngestService::new(
            store.clone(),
            archive,
            Arc::new(SystemClock),
            WebhookSecrets::parse("s-e-c-r-e-t").unwrap(),
        );
        let notify = notify.then(|| NotifyApi {
            rules: store.clone(),
            log: store.clone(),
            sink: store.clone(),
            allow_private,
            clock: Arc::new(SystemClock),
        });
        let router = api::router(AppState {
            ingest: Arc::new(ingest),
            store: store.clone(),
            search: Some(store.clone()),
            tokens: tokens.map(|t| ApiTokens::parse(t).unwrap()).unwrap_or_default(),
            max_body_bytes: 1 << 20,
            notify,
        });
        Self { router, store, _dir: dir }
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), text)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value, String) {
        self.call(Request::get(uri).header(header::HOST, "127.0.0.1:8080").body(Body::empty()).unwrap()).await
    }

    async fn write(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value, String) {
        let b = Request::builder().method(method).uri(uri).header(header::HOST, "127.0.0.1:8080");
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.call(req.unwrap()).await
    }
}

fn rule() -> Value {
    json!({"on": "pull_request.merged", "repo": "acme/api", "branch": "main",
           "target": {"type": "webhook", "url": "https://hooks.example.com/octoscope"}})
}

#[tokio::test]
async fn a_rule_is_created_read_listed_and_its_secret_shown_once() {
    let app = App::new();
    // WHEN a rule is created
    let (status, created, _) = app.write("POST", "/api/rules", Some(rule())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(RuleId::parse(&id).is_ok());
    assert_eq!(created["on"], "pull_request.merged");
    assert_eq!(created["repo"], "acme/api");
    assert_eq!(created["branch"], "main");
    assert_eq!(created["author"], Value::Null);
    assert_eq!(created["target"], json!({"type": "webhook", "url": "https://hooks.example.com/octoscope"}));
    assert_eq!(created["disabled"], Value::Null);
    // THEN reading it, listing it, never shows the secret
    let (status, one, text) = app.get(&format!("/api/rules/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], id.as_str());
    assert!(one.get("secret").is_none() && !text.contains(&secret) && !text.contains("whsec_"), "{text}");
    assert_eq!(one["stats"], json!({"delivered": 0, "failed": 0, "pending": 0}));
    let (status, list, text) = app.get("/api/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!text.contains("whsec_"));
    // AND the store keeps it
    assert!(app.store.get_rule(&RuleId::parse(&id).unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn bodies_are_read_strictly() {
    let app = App::new();
    let url = json!({"type": "webhook", "url": "https://hooks.example.com/x"});
    for (body, says) in [
        (json!({"on": "pull_request.exploded", "target": url}), "unknown event"),
        (json!({"on": "test", "target": url}), "unknown event"),
        (json!({"on": "branch.moved", "colour": "red", "target": url}), "unknown field"),
        (json!({"on": "branch.moved", "repo": "not-a-repo", "target": url}), "repo must be OWNER/NAME"),
        (json!({"on": "branch.moved", "branch": "", "target": url}), "branch"),
        (json!({"on": "branch.moved", "branch": "a\u{7}b", "target": url}), "branch"),
        (json!({"on": "branch.moved", "hours": 4, "target": url}), "hours is a filter of review.pickup_breached"),
        (json!({"on": "branch.moved", "hours": null, "target": url}), "hours is a filter"),
        (json!({"on": "review.pickup_breached", "hours": 0, "target": url}), "hours must be"),
        (json!({"on": "review.pickup_breached", "hours": 1.5, "target": url}), "not a whole number"),
        (json!({"on": "deployment.failed", "threshold_seconds": 60, "target": url}), "threshold_seconds is a filter"),
        (json!({"on": "branch.moved", "team": "just-a-team", "target": url}), "team must be ORG/TEAM-SLUG"),
        (json!({"on": "branch.moved"}), "missing field `target`"),
        (json!({"on": "branch.moved", "target": {"type": "email", "to": "a@b.c"}}), "unknown variant"),
        (json!({"on": "branch.moved", "target": {"type": "webhook", "url": "http://hooks.example.com/"}}), "http://"),
        (json!({"on": "branch.moved", "target": {"type": "webhook", "url": "https://127.0.0.1/"}}), "127.0.0.1"),
        (json!({"on": "branch.moved", "target": {"type": "slack", "url": "https://[::1]/"}}), "::1"),
        (json!({"on": "branch.moved", "target": {"type": "webhook", "url": "https://10.0.0.1/"}}), "10.0.0.1"),
        (
            json!({"on": "branch.moved", "target": {"type": "webhook", "url": "https://169.254.169.254/"}}),
            "169.254.169.254",
        ),
        (json!({"on": "branch.moved", "target": {"type": "webhook", "url": "https://localhost/"}}), "target.url"),
        (json!({"on": "branch.moved", "target": {"type": "repository_dispatch", "repo": "x"}}), "target.repo"),
    ] {
        let (status, answer, _) = app.write("POST", "/api/rules", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (status, _, _) = app
        .call(
            Request::post("/api/rules")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // AND the scheduled events take their own filters
    let ok = json!({"on": "ci.queue_time_regressed", "threshold_seconds": 600.0, "label": "ubuntu-latest",
                    "target": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}});
    let (status, created, _) = app.write("POST", "/api/rules", Some(ok)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secret"], Value::Null, "no signing secret for Slack");
    // AND a Slack URL's path, its credential, is not shown
    assert_eq!(created["target"], json!({"type": "slack", "url": "https://hooks.slack.com/…"}));
    assert_eq!(created["threshold_seconds"], 600);
    // AND with private targets allowed, a local receiver is one
    let private = App::with(None, true, true);
    let local = json!({"on": "branch.moved", "target": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}});
    assert_eq!(private.write("POST", "/api/rules", Some(local)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn writes_without_tokens_need_json_and_this_origin() {
    let app = App::new();
    let post = |content_type: &str, origin: Option<&str>| {
        let mut b = Request::post("/api/rules").header(header::HOST, "127.0.0.1:8080");
        b = b.header(header::CONTENT_TYPE, content_type);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Body::from(rule().to_string())).unwrap()
    };
    // GIVEN a form's content type THEN 415
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        assert_eq!(app.call(post(ct, None)).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    // AND another origin THEN 403, whatever the type
    for origin in ["http://evil.example", "http://127.0.0.1:8081", "null", "https://127.0.0.1:8080.evil.example"] {
        assert_eq!(app.call(post("application/json", Some(origin))).await.0, StatusCode::FORBIDDEN, "{origin}");
    }
    // AND this server's own origin, or none (curl), THEN created
    assert_eq!(app.call(post("application/json", Some("http://127.0.0.1:8080"))).await.0, StatusCode::CREATED);
    assert_eq!(app.call(post("application/json; charset=utf-8", None)).await.0, StatusCode::CREATED);
    // AND a delete from another origin is refused too; reads are not guarded
    let (_, list, _) = app.get("/api/rules").await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let del = Request::delete(format!("/api/rules/{id}"))
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.call(del).await.0, StatusCode::FORBIDDEN);
    let get = Request::get("/api/rules").header(header::ORIGIN, "https://evil.example").body(Body::empty()).unwrap();
    assert_eq!(app.call(get).await.0, StatusCode::OK);
}

#[tokio::test]
async fn with_tokens_every_call_needs_one() {
    let app = App::with(Some(TOKEN), false, true);
    assert_eq!(app.write("POST", "/api/rules", Some(rule())).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/rules").await.0, StatusCode::UNAUTHORIZED);
    let req = Request::post("/api/rules")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(rule().to_string()))
        .unwrap();
    assert_eq!(app.call(req).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_test_is_in_the_log_and_a_deleted_rule_is_gone() {
    let app = App::new();
    let (_, created, _) = app.write("POST", "/api/rules", Some(rule())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // WHEN a test is sent
    let (status, note, _) = app.write("POST", &format!("/api/rules/{id}/test"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{note}");
    assert_eq!(note["event"], "test");
    assert_eq!(note["status"], "pending");
    assert!(note["transition_key"].as_str().unwrap().starts_with("test:"));
    let note_id = note["id"].as_str().unwrap().to_owned();
    // THEN it is in the log, by rule and by status, and on its own with its attempts
    let (status, log, _) = app.get(&format!("/api/notifications?rule={id}&status=pending")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log["items"][0]["id"], note_id.as_str());
    assert_eq!(app.get("/api/notifications?status=delivered").await.1["items"], json!([]));
    let (status, one, _) = app.get(&format!("/api/notifications/{note_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["attempt_log"], json!([]));
    assert_eq!(one["attempts"], 0);
    assert_eq!(one["rule_id"], id.as_str());
    // AND a second test is another notification
    let (_, again, _) = app.write("POST", &format!("/api/rules/{id}/test"), None).await;
    assert_ne!(again["id"], note["id"]);
    let (_, rules, _) = app.get("/api/rules").await;
    assert_eq!(rules["items"][0]["stats"]["pending"], 2);
    // WHEN the rule is deleted THEN it is gone, and its notifications stay
    assert_eq!(app.write("DELETE", &format!("/api/rules/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/rules/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.write("DELETE", &format!("/api/rules/{id}"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.write("POST", &format!("/api/rules/{id}/test"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/notifications/{note_id}")).await.0, StatusCode::OK);
    // AND ids that do not parse are 400s, unknown ones 404s
    assert_eq!(app.get("/api/rules/rul_nope").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/notifications/ntf_nope").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/notifications?rule=nope").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/notifications?status=lost").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("/api/notifications/ntf_{}", "0".repeat(26))).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replacing_keeps_the_id_and_secret_and_enables_the_target_rotating_keeps_the_old_secret() {
    let app = App::new();
    let (_, created, _) = app.write("POST", "/api/rules", Some(rule())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    let rid = RuleId::parse(&id).unwrap();
    app.store.disable_rule(&rid, "the target answered 410 Gone").await.unwrap();
    assert_eq!(app.get(&format!("/api/rules/{id}")).await.1["disabled"], "the target answered 410 Gone");
    // WHEN it is replaced
    let new = json!({"on": "branch.moved", "branch": "release/*",
                     "target": {"type": "webhook", "url": "https://hooks.example.com/other"}});
    let (status, put, text) = app.write("PUT", &format!("/api/rules/{id}"), Some(new)).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    // THEN the id and secret are kept (and not shown), the target enabled
    assert_eq!(put["id"], id.as_str());
    assert_eq!(put["on"], "branch.moved");
    assert_eq!(put["repo"], Value::Null);
    assert_eq!(put["disabled"], Value::Null);
    assert_eq!(put["secret"], Value::Null);
    assert!(!text.contains(&first));
    let stored = app.store.get_rule(&rid).await.unwrap().unwrap();
    assert_eq!(stored.secrets.current(), Some(first.as_str()));
    // WHEN the secret is rotated THEN the new one is shown once, the old one kept after it
    let (status, rotated, _) = app.write("POST", &format!("/api/rules/{id}/rotate-secret"), None).await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["secret"].as_str().unwrap();
    assert_ne!(second, first);
    let stored = app.store.get_rule(&rid).await.unwrap().unwrap();
    assert_eq!(stored.secrets.0, vec![second.to_owned(), first.clone()]);
    // AND a Slack target has no secret to rotate; a replacement to a webhook makes one
    let slack = json!({"on": "branch.moved", "target": {"type": "slack", "url": "https://hooks.slack.com/services/x"}});
    let (_, s, _) = app.write("POST", "/api/rules", Some(slack)).await;
    let sid = s["id"].as_str().unwrap();
    assert_eq!(app.write("POST", &format!("/api/rules/{sid}/rotate-secret"), None).await.0, StatusCode::CONFLICT);
    let (status, to_webhook, _) = app.write("PUT", &format!("/api/rules/{sid}"), Some(rule())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(to_webhook["secret"].as_str().unwrap().starts_with("whsec_"));
    // AND a replacement of a rule that is not there is a 404
    let missing = format!("/api/rules/rul_{}", "0".repeat(20));
    assert_eq!(app.write("PUT", &missing, Some(rule())).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_notifications_the_routes_answer_501() {
    let app = App::with(None, false, false);
    assert_eq!(app.get("/api/rules").await.0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(app.write("POST", "/api/rules", Some(rule())).await.0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(app.get("/api/notifications").await.0, StatusCode::NOT_IMPLEMENTED);
}

//! Test harness: the real router over the real SQLite store and archive, in a
//! temporary data directory, driven with `tower::ServiceExt::oneshot`.
#![allow(dead_code, unused_imports)]

pub mod changes;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::ApiTokens;
use octoscope::ports::{RawArchive, Store};
use octoscope::services::IngestService;
use octoscope::webhook::{WebhookSecrets, sign};
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-one";

pub struct TestApp {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub archive: Arc<SqliteArchive>,
    pub dir: tempfile::TempDir,
}

pub struct Options {
    pub secrets: &'static str,
    pub tokens: Option<&'static str>,
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { secrets: SECRET, tokens: None, max_body_bytes: 25 * 1024 * 1024 }
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(o: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::open(dir, o)
    }

    /// The app over an existing data directory (e.g. after a replay).
    pub fn open(dir: tempfile::TempDir, o: Options) -> Self {
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
        let archive = Arc::new(SqliteArchive::open(&dir.path().join("archive.db")).unwrap());
        let ingest = IngestService::new(
            store.clone() as Arc<dyn Store>,
            archive.clone() as Arc<dyn RawArchive>,
            Arc::new(SystemClock),
            WebhookSecrets::parse(o.secrets).unwrap(),
        );
        let router = api::router(AppState {
            ingest: Arc::new(ingest),
            store: store.clone(),
            search: Some(store.clone()),
            tokens: o.tokens.map(|t| ApiTokens::parse(t).unwrap()).unwrap_or_default(),
            max_body_bytes: o.max_body_bytes,
            notify: None,
        });
        Self { router, store, archive, dir }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, json)
    }

    /// POST a body as GitHub would: signed with `SECRET`, a fresh delivery id.
    pub async fn deliver(&self, event: &str, body: &[u8]) -> (StatusCode, Value) {
        self.deliver_as(event, body, &uuid()).await
    }

    pub async fn deliver_as(&self, event: &str, body: &[u8], delivery: &str) -> (StatusCode, Value) {
        let req = webhook_request(event, body, delivery, Some(&sign(SECRET, body)));
        self.send(req).await
    }

    /// How many deliveries the raw archive holds.
    pub async fn archive_len(&self) -> usize {
        self.archive.scan(None, 1_000_000).await.unwrap().len()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// Every item of a paginated list, following `next_cursor`.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let (status, body) = self.get(&url).await;
            assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
            items.extend(body["items"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }
}

pub fn webhook_request(event: &str, body: &[u8], delivery: &str, signature: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/test")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "109948940");
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub use octoscope_testkit::{all_fixtures, fixture};

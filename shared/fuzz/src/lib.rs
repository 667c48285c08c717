//! What the fuzz targets share: one tokio current-thread runtime per process,
//! the product's `Router` over a temporary SQLite store, and a fake GitHub
//! that answers with the fuzzer's bytes. NOT product code.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState, NotifyApi};
use octoscope::config::ApiTokens;
use octoscope::domain::notify::{Rule, RuleEvent, RuleFilters, RuleId, TargetSecrets, TargetSpec};
use octoscope::ports::RuleStore;
use octoscope::services::{IngestService, demo};
use octoscope::webhook::WebhookSecrets;
use tower::ServiceExt;

#[cfg(feature = "github")]
pub mod fakegithub;

/// The webhook secret the targets sign with.
pub const SECRET: &str = "fuzz-webhook-secret";
/// How many of the demo organisation's deliveries [`App::with_demo`] loads.
pub const DEMO_DELIVERIES: usize = 400;
/// The rule [`App::with_demo`] holds (a webhook target), for the paths under `/api/rules/{id}`.
pub const RULE_ID: &str = "rul_00000000000000000001";
/// The API's bearer token in the targets.
pub const TOKEN: &str = "fuzz-api-token-0123456789";

/// A delivery body's `action`.
fn action(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?.get("action")?.as_str().map(str::to_owned)
}

/// A current-thread runtime: one per process, every input run on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// `octoscope serve`'s whole surface over a fresh SQLite store in a temporary directory.
pub struct App {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    pub ingest: Arc<IngestService>,
    /// The signing secrets of the rule [`App::with_demo`] holds (none in [`App::new`]).
    pub rule_secrets: Vec<String>,
    _dir: tempfile::TempDir,
}

impl App {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).expect("store"));
        let archive = Arc::new(SqliteArchive::open(&dir.path().join("archive.db")).expect("archive"));
        let ingest = IngestService::new(
            store.clone(),
            archive,
            Arc::new(SystemClock),
            WebhookSecrets::parse(&format!("{SECRET},{}", demo::DEMO_SECRET)).expect("secrets"),
        );
        let ingest = Arc::new(ingest);
        let router = api::router(AppState {
            ingest: ingest.clone(),
            store: store.clone(),
            search: Some(store.clone()),
            tokens: ApiTokens::parse(TOKEN).expect("token"),
            max_body_bytes: 1 << 20,
            notify: Some(NotifyApi {
                rules: store.clone(),
                log: store.clone(),
                sink: store.clone(),
                allow_private: false,
                clock: Arc::new(SystemClock),
            }),
        });
        Self { router, store, ingest, rule_secrets: Vec::new(), _dir: dir }
    }

    /// The same, holding the first deliveries of the demo organisation
    /// (`octoscope demo`; all ~10,700 take too long to load instrumented),
    /// loaded through the webhook path.
    pub async fn with_demo() -> Self {
        let mut app = Self::new();
        // The demo sends each run and job as GitHub does, three times (requested
        // or queued, in_progress, completed); the first deliveries keep only the
        // completions, so they hold as many pull requests, reviews and pushes as
        // before (each state is in the webhook target's corpus).
        let first: Vec<demo::DemoDelivery> = demo::generate(chrono::Utc::now(), 42)
            .into_iter()
            .filter(|d| !matches!(d.event, "workflow_run" | "workflow_job") || action(&d.body) == Some("completed".into()))
            .take(DEMO_DELIVERIES)
            .collect();
        demo::load(&app.ingest, &first).await.expect("demo organisation");
        let now = chrono::Utc::now();
        let rule = Rule {
            id: RuleId::parse(RULE_ID).expect("rule id"),
            event: RuleEvent::PullRequestMerged,
            filters: RuleFilters::default(),
            target: TargetSpec::Webhook { url: "https://hooks.example.com/octoscope".to_owned() },
            secrets: TargetSecrets::generate(),
            created_at: now,
            updated_at: now,
            disabled: None,
        };
        app.store.put_rule(&rule).await.expect("a rule");
        app.rule_secrets = rule.secrets.0.clone();
        app
    }

    /// One request through the `Router`, answered in full.
    pub async fn send(&self, req: Request<Body>) -> (Response<()>, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("response body").to_bytes().to_vec();
        (Response::from_parts(parts, ()), bytes)
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits `data` at its first newline: (the line, the rest); no newline: all is the line.
pub fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

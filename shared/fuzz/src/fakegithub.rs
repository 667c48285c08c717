//! A fake GitHub for the `github` target: on `127.0.0.1`, it answers the
//! first request after [`FakeGitHub::set`] with the fuzzer's status, headers
//! and body, and every later one with a 404, so that no answer can make the
//! adapter page for ever. Served by a task on the caller's runtime.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use octoscope::adapters::github::{GitHubClient, GitHubConfig, RetryPolicy};
use octoscope::config::GitHubCredentials;

/// One scripted answer.
#[derive(Default, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct FakeGitHub {
    pub url: String,
    next: Arc<Mutex<Option<Answer>>>,
}

impl FakeGitHub {
    /// Listen on a free port, served by a task spawned on the current runtime.
    pub async fn start() -> Self {
        let next: Arc<Mutex<Option<Answer>>> = Arc::default();
        let served = next.clone();
        let app = Router::new().fallback(move || {
            let answer = served.lock().unwrap().take();
            async move { respond(answer) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { url, next }
    }

    /// The answer to the next request (and only to it).
    pub fn set(&self, answer: Answer) {
        *self.next.lock().unwrap() = Some(answer);
    }

    /// Every request a 404 until the next [`FakeGitHub::set`].
    pub fn set_none(&self) {
        *self.next.lock().unwrap() = None;
    }

    /// The product's adapter pointed at this fake, retrying and waiting never.
    pub async fn client(&self) -> GitHubClient {
        let mut config = GitHubConfig::new(self.url.clone(), GitHubCredentials::Token("fuzz-token".into()));
        config.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_rate_limit_wait: Duration::ZERO,
            secondary_limit_wait: Duration::ZERO,
            ..RetryPolicy::default()
        };
        GitHubClient::new(config).await.expect("client")
    }
}

fn respond(answer: Option<Answer>) -> Response<Body> {
    let Some(answer) = answer else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"message":"Not Found"}"#))
            .unwrap();
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Body::from(answer.body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in answer.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.insert(n, v);
        }
    }
    resp
}

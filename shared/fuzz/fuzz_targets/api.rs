//! Every API route's path and query parsing, through the whole `Router` over a
//! store holding the demo organisation.
//!
//! Input: line 1 the `Authorization` header (empty: absent); line 2 the method
//! (empty: GET); line 3 the path and query; the rest the body, sent as
//! `application/json` (the rules' writes: `POST /api/rules`, `PUT
//! /api/rules/{id}` on the rule [`octoscope_fuzz::RULE_ID`], ...).
//!
//! Invariants: never a 5xx; without the token, nothing under `/api` but a 401
//! or a 404; every answer with a body is JSON, an error one `{"error": "…"}`;
//! a target's signing secret (`whsec_`) only in the answer that creates a rule
//! or rotates its secret.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use octoscope_fuzz::{App, TOKEN, line, runtime};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static APP: LazyLock<App> = LazyLock::new(|| RT.block_on(App::with_demo()));

fuzz_target!(
    // The demo organisation is loaded before the first input, outside its time limit.
    init: {
        LazyLock::force(&APP);
    },
    |data: &[u8]| {
    let (auth, rest) = line(data);
    let (method, rest) = line(rest);
    let (target, body) = line(rest);
    let method = if method.is_empty() { Ok(Method::GET) } else { Method::from_bytes(method) };
    let Ok(method) = method else { return };
    let mut req = Request::builder().method(method.clone()).uri(target);
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    // What is not a request line at all never reaches the router.
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else { return };
    let path = req.uri().path().to_owned();
    let (resp, body) = RT.block_on(APP.send(req));
    let status = resp.status();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !status.is_server_error(),
        "{status} for {method} {target:?}: {text}",
        target = String::from_utf8_lossy(target)
    );
    let authorised = std::str::from_utf8(auth)
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .is_some_and(|t| t.trim() == TOKEN);
    if !authorised && (path == "/api" || path.starts_with("/api/")) {
        assert!(matches!(status.as_u16(), 401 | 404 | 405), "{status} without the token for {path}: {text}");
    }
    let shows_secret = method == Method::POST
        && status.is_success()
        && (path == "/api/rules" || (path.starts_with("/api/rules/") && path.ends_with("/rotate-secret")));
    if !shows_secret {
        assert!(!holds_secret(&text), "a signing secret in {status} for {method} {path}: {text}");
    }
    if method != Method::HEAD && !body.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
        if !status.is_success() {
            assert!(json["error"].is_string(), "{status} without an error message: {text}");
        }
    }
});

/// A `whsec_` secret: the prefix and 24 or more base64 characters (the
/// OpenAPI document names the prefix in prose).
fn holds_secret(text: &str) -> bool {
    text.match_indices("whsec_").any(|(i, p)| {
        text[i + p.len()..].bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')).count()
            >= 24
    })
}

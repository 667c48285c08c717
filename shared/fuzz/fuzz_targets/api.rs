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
//! none of the secrets the product holds (the demo rule's, and every one an
//! answer creating, replacing or rotating a rule showed in its `secret` field)
//! anywhere else, whole or cut to 24 characters or more. The answers' text is
//! checked for the product's own secrets, not for the `whsec_` prefix: an
//! error that quotes the request's own text (`?repo=whsec_…`) is no leak.
//! The harness keeps the secrets as hashes only and never compares one as a
//! string: libFuzzer learns the operands of every string comparison the
//! target makes (its CMP dictionary), so a comparison with a secret would
//! teach the fuzzer the secret, which it would then send and see quoted back
//! in a 400.
#![no_main]

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
use std::sync::{LazyLock, Mutex};

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use octoscope_fuzz::{App, TOKEN, line, runtime};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static APP: LazyLock<App> = LazyLock::new(|| RT.block_on(App::with_demo()));
/// Every signing secret the product has generated so far.
static SECRETS: LazyLock<Mutex<Secrets>> = LazyLock::new(|| {
    let mut secrets = Secrets::default();
    APP.rule_secrets.iter().for_each(|s| secrets.add(s));
    Mutex::new(secrets)
});

fuzz_target!(
    // The demo organisation is loaded before the first input, outside its time limit.
    init: {
        LazyLock::force(&APP);
        LazyLock::force(&SECRETS);
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
    let shows_secret = status.is_success()
        && ((method == Method::POST && path == "/api/rules")
            || (method == Method::PUT && path.starts_with("/api/rules/") && path.matches('/').count() == 3)
            || (method == Method::POST && path.starts_with("/api/rules/") && path.ends_with("/rotate-secret")));
    let mut checked = text.to_string();
    if shows_secret {
        let mut json: serde_json::Value = serde_json::from_slice(&body).expect("a rule's answer is JSON");
        if let Some(secret) = json.get("secret").and_then(|s| s.as_str()) {
            SECRETS.lock().unwrap().add(secret);
        }
        // The one place a secret may be: the answer's `secret` field.
        json.as_object_mut().map(|o| o.remove("secret"));
        checked = json.to_string();
    }
    if let Some(found) = SECRETS.lock().unwrap().held(&checked) {
        panic!("a secret ({found:.12}…) in {status} for {method} {path}: {text}");
    }
    if method != Method::HEAD && !body.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
        if !status.is_success() {
            assert!(json["error"].is_string(), "{status} without an error message: {text}");
        }
    }
});

/// The shortest part of a secret that counts as a leak: `whsec_` and 24 characters.
const SHORTEST: usize = 6 + 24;

/// Secrets by hash: of each whole secret, and of each of its beginnings of
/// [`SHORTEST`] characters or more.
#[derive(Default)]
struct Secrets {
    whole: HashSet<u64>,
    beginnings: HashSet<u64>,
    lengths: BTreeSet<usize>,
}

fn hash(s: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(s)
}

impl Secrets {
    fn add(&mut self, secret: &str) {
        self.whole.insert(hash(secret));
        self.lengths.insert(secret.len());
        for end in SHORTEST.min(secret.len())..=secret.len() {
            self.beginnings.insert(hash(&secret[..end]));
        }
    }

    /// A `whsec_…` run of `text` that is a secret's beginning (a cut copy)
    /// or begins with a whole secret.
    fn held<'t>(&self, text: &'t str) -> Option<&'t str> {
        text.match_indices("whsec_").find_map(|(i, _)| {
            let run = text[i..]
                .char_indices()
                .skip(6)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
                .map_or(text.len() - i, |(n, _)| n);
            // ASCII only from `i` to `i + run`: every cut below is on a character boundary.
            let found = &text[i..i + run];
            let cut_copy = run >= SHORTEST && self.beginnings.contains(&hash(found));
            let whole = self.lengths.iter().any(|&n| n <= run && self.whole.contains(&hash(&found[..n])));
            (cut_copy || whole).then_some(found)
        })
    }
}

//! Secrets never leak. The real `octoscope` binary runs every path that
//! handles a secret at `RUST_LOG=trace` (every target, every level), its
//! stdout and stderr captured whole, and every API response (status line,
//! headers, body) is kept: webhook deliveries signed with each of two rotated
//! secrets, with a wrong one and with none; the API with valid, invalid and
//! missing bearer tokens; the integrity check and its resyncs (in `serve` and
//! in `octoscope check`) against the fake GitHub with a personal token and as
//! a GitHub App (private key as text and as a file; the installation tokens the
//! fake mints and the app's JWTs are secrets too); a backfill as the app; and
//! configuration errors holding secrets; notification targets: a webhook
//! rule made through the API, its `whsec_` signing secret rotated (the old
//! and the new one both secrets), a test sent with each and verified by an
//! independent receiver (so the secrets were really used), a Slack rule whose
//! incoming-webhook URL path (its credential) holds a canary, sent to as well,
//! and a `repository_dispatch` sent with the personal token. Then every byte
//! seen is scanned for every secret: the raw value, its base64 (standard and
//! URL-safe, at any byte offset), its hex, and for the PEM each of its base64
//! body lines (for a `whsec_` secret also its key, the base64 after the
//! prefix, decoded: as hex and as base64). The only answers let through are
//! the rule's creation and the rotation, which show their own secret once
//! (asserted) and are scanned for every other.
//!
//! The values are distinctive, so a hit is unambiguous;
//! `the_scanner_finds_each_kind_of_planted_leak` shows the scan can fail.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use octoscope_fakehub::{FakeHub, HubConfig, OrgSpec, TEST_APP_PRIVATE_KEY, WebhookSpec};
use octoscope_testkit::receiver::Receiver;
use octoscope_testkit::{all_fixtures, sign};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");

/// The webhook secret GitHub signs with now, and the one being rotated out.
const WEBHOOK_NEW: &str = "whsec-NEWcanary-4c1f9a7e2b6d";
const WEBHOOK_OLD: &str = "whsec-OLDcanary-8d2e6b1f3a5c";
/// Signs deliveries the server must refuse (never configured, never sent).
const WEBHOOK_WRONG: &str = "whsec-WRONGcanary-0f9e8d7c6b";
/// The two API tokens of `OCTOSCOPE_API_TOKENS`.
const API_A: &str = "apitok-Acanary-5e8c2d9f1b7a";
const API_B: &str = "apitok-Bcanary-2b7f4e1a9c3d";
/// Presented but wrong: same prefix (shorter, longer), unrelated.
const API_SHORT: &str = "apitok-Acanary-5e8c2d9f1b7";
const API_WRONG: &str = "apitok-Wcanary-7a6b5c4d3e2f";
/// The personal token the fake GitHub accepts.
const GITHUB_TOKEN: &str = "ghp_canaryPersonal9f8e7d6c5b4a";
/// Every installation token the fake mints starts so (`ghs_fakehub_N`).
const INSTALLATION_TOKEN_PREFIX: &str = "ghs_fakehub_";
/// The app JWT's header (`{"alg":"RS256","typ":"JWT"}`, base64url): any JWT
/// the app signs starts with it.
const APP_JWT_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
/// Secrets only ever given in a configuration that is refused.
const BAD_SHORT_TOKEN: &str = "tokcanary-9z";
const BAD_LIST_TOKEN: &str = "apitok-Lcanary-3f2e1d0c9b8a";
const BAD_LIST_SECRET: &str = "whsec-LISTcanary-6a5b4c3d2e";
const BAD_PEM: &str = "pemcanary-not-a-key-1e2d3c4b5a";
const BAD_GITHUB_TOKEN: &str = "ghp_canaryRefused1a2b3c4d5e6f";
/// The credential part of a Slack incoming-webhook URL's path.
const SLACK_CANARY: &str = "slackcanaryPath7e3f9a1c5d2b";

/// A secret by name, and the strings whose presence in output means it leaked.
#[derive(Clone)]
struct Secret {
    name: String,
    needles: Vec<String>,
}

impl Secret {
    /// The raw value and its obvious encodings.
    fn new(name: &str, value: &str) -> Self {
        let mut needles = vec![value.to_owned(), hex::encode(value)];
        needles.extend(base64_forms(value.as_bytes()));
        Self { name: name.to_owned(), needles }
    }

    /// A value only known by its start (e.g. tokens minted at run time).
    fn prefix(name: &str, prefix: &str) -> Self {
        Self { name: name.to_owned(), needles: vec![prefix.to_owned()] }
    }

    /// A Standard Webhooks secret (`whsec_` + base64 of the key): the value's
    /// forms, the base64 after the prefix alone, and the key's hex and base64.
    fn whsec(name: &str, value: &str) -> Self {
        let mut s = Self::new(name, value);
        let encoded = value.strip_prefix("whsec_").expect("a whsec_ secret");
        let key = STANDARD.decode(encoded).expect("base64 after whsec_");
        s.needles.push(encoded.to_owned());
        s.needles.push(hex::encode(&key));
        s.needles.extend(base64_forms(&key));
        s.needles.sort();
        s.needles.dedup();
        s
    }

    /// A PEM: the whole text, and each base64 body line on its own (logs
    /// and JSON break the text into lines or escape its newlines).
    fn pem(name: &str, pem: &str) -> Self {
        let mut s = Self::new(name, pem);
        s.needles.push(pem.replace('\n', "\\n"));
        s.needles
            .extend(pem.lines().map(str::trim).filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_owned));
        s
    }
}

/// The base64 (standard and URL-safe) of `bytes` as it shows inside any
/// longer base64 text: at each of the three byte offsets, the characters
/// that depend on `bytes` alone.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(bytes);
        let total_bits = padded.len() * 8;
        let first = (offset * 8).div_ceil(6);
        let last = total_bits / 6; // characters [first, last) hold secret bits only
        for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
            let text = engine.encode(&padded);
            if last > first + 12 {
                out.push(text[first..last].to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every secret of the scenarios known before they run (the rules' signing
/// secrets are added when the server makes them).
fn secrets() -> Vec<Secret> {
    let mut all: Vec<Secret> = [
        ("webhook secret (new)", WEBHOOK_NEW),
        ("webhook secret (old)", WEBHOOK_OLD),
        ("webhook secret (wrong)", WEBHOOK_WRONG),
        ("API token A", API_A),
        ("API token B", API_B),
        ("API token presented, too short", API_SHORT),
        ("API token presented, wrong", API_WRONG),
        ("GitHub token", GITHUB_TOKEN),
        ("refused short API token", BAD_SHORT_TOKEN),
        ("refused API token list", BAD_LIST_TOKEN),
        ("refused webhook secret list", BAD_LIST_SECRET),
        ("refused private key", BAD_PEM),
        ("refused GitHub token", BAD_GITHUB_TOKEN),
        ("Slack webhook URL path", SLACK_CANARY),
    ]
    .into_iter()
    .map(|(n, v)| Secret::new(n, v))
    .collect();
    all.push(Secret::pem("GitHub App private key", TEST_APP_PRIVATE_KEY));
    all.push(Secret::prefix("installation token", INSTALLATION_TOKEN_PREFIX));
    all.push(Secret::prefix("GitHub App JWT", APP_JWT_HEADER));
    all
}

/// Each leak found in `text`: which secret, in which form, where.
fn leaks(what: &str, text: &str, secrets: &[Secret]) -> Vec<String> {
    let mut found = Vec::new();
    for s in secrets {
        for needle in &s.needles {
            if let Some(at) = text.find(needle.as_str()) {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                let line: String = text[line_start..line_end].chars().take(300).collect();
                found.push(format!("{} ({needle:?}) in {what}: {line}", s.name));
            }
        }
    }
    found
}

/// All output of a process, read as it comes (so it never blocks on a pipe).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn drain(&self, mut from: impl Read + Send + 'static) {
        let sink = self.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `octoscope serve` at trace level, all its output captured; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    out: Captured,
}

impl Serve {
    fn start(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut cmd = trace_command(&["serve", "--listen", "127.0.0.1:0"], data_dir, env);
        let mut child = cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = Captured::default();
        out.drain(child.stdout.take().unwrap());
        out.drain(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let text = out.text();
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("octoscope listening on ")) {
                break line.trim().to_owned();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("octoscope serve exited ({status}) before listening: {text}");
            }
            assert!(Instant::now() < deadline, "octoscope serve did not listen within 60 s: {text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, base, out }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `octoscope ARGS --data-dir DIR` at trace level with only `env` of the
/// variables that carry configuration.
fn trace_command(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data_dir).env("RUST_LOG", "trace").env("NO_COLOR", "1");
    for var in [
        "GITHUB_WEBHOOK_SECRET",
        "OCTOSCOPE_API_TOKENS",
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_PRIVATE_KEY_PATH",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_API_URL",
        "OCTOSCOPE_REPOS",
        "OCTOSCOPE_ORGS",
        "OCTOSCOPE_NOTIFY_ALLOW_PRIVATE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run a command to its end; (exit code, everything it printed).
fn run(mut cmd: Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), said)
}

/// Every API response seen: request, status, headers, body.
#[derive(Default)]
struct Responses(Vec<String>);

impl Responses {
    async fn keep(&mut self, what: String, resp: reqwest::Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let headers: Vec<String> =
            resp.headers().iter().map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes()))).collect();
        let body = resp.text().await.unwrap();
        self.0.push(format!("{what} -> {status}\n{}\n{body}", headers.join("\n")));
        (status, body)
    }
}

/// A stand-in for Slack's incoming webhooks on a free loopback port: answers
/// every request `200 ok` and keeps each request line (method, path, version).
fn slack_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            keep.lock().unwrap().push(request_line.trim().to_owned());
            let answer =
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
            let _ = stream.write_all(answer);
        }
    });
    (port, seen)
}

/// An API call with token A, its answer kept: (status, body as JSON or null).
async fn call(
    client: &reqwest::Client,
    responses: &mut Responses,
    method: reqwest::Method,
    url: String,
    body: Option<&Value>,
) -> (u16, Value) {
    let what = format!("{method} {}", url.split_once("/api/").map_or(url.as_str(), |(_, p)| p));
    let mut req = client.request(method, &url).bearer_auth(API_A);
    if let Some(b) = body {
        req = req.json(b);
    }
    let (status, text) = responses.keep(what, req.send().await.unwrap()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Until notification `id` is delivered (a failure fails the test); its detail.
async fn wait_delivered(client: &reqwest::Client, base: &str, responses: &mut Responses, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{base}/api/notifications/{id}");
        let (status, one) = call(client, responses, reqwest::Method::GET, url, None).await;
        assert_eq!(status, 200, "{one}");
        assert_ne!(one["status"], "failed", "{one:#}");
        if one["status"] == "delivered" {
            return one;
        }
        assert!(Instant::now() < deadline, "not delivered within 30 s: {one:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Send rule `id` a test notification and wait until it is delivered; its detail.
async fn test_delivered(client: &reqwest::Client, base: &str, responses: &mut Responses, rule: &str) -> Value {
    let url = format!("{base}/api/rules/{rule}/test");
    let (status, note) = call(client, responses, reqwest::Method::POST, url, None).await;
    assert_eq!(status, 202, "{note}");
    wait_delivered(client, base, responses, note["id"].as_str().unwrap()).await
}

async fn post_webhook(
    client: &reqwest::Client,
    base: &str,
    event: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-github-hook-id", "1");
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(body).send().await.unwrap()
}

const API_PATHS: &[&str] = &[
    "/api/health",
    "/api/repos",
    "/api/pulls?state=all",
    "/api/pulls/octo-org/repo-0/1",
    "/api/teams",
    "/api/commits?repo=octo-org/repo-0",
    "/api/workflow-runs",
    "/api/deliveries",
    "/api/integrity",
    "/api/metrics/pulls",
    "/api/metrics/ci",
    "/api/metrics/dora",
    "/api/metrics/health",
    "/api/openapi.json",
    "/api/no-such-thing",
    "/api/pulls?limit=nope",
];

/// Until `/api/integrity` shows a finished check whose jobs all ended.
async fn wait_for_check(client: &reqwest::Client, base: &str, responses: &mut Responses) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = client.get(format!("{base}/api/integrity")).bearer_auth(API_A).send().await.unwrap();
        let (_, body) = responses.keep("GET /api/integrity (waiting for the check)".into(), resp).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let jobs = v["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
        let ended = |j: &Value| matches!(j["state"].as_str(), Some("succeeded" | "failed"));
        if !v["items"].as_array().is_none_or(Vec::is_empty) && !jobs.is_empty() && jobs.iter().all(ended) {
            return;
        }
        assert!(Instant::now() < deadline, "the scheduled check did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_log_line_or_an_api_response_at_trace_level() {
    let mut secrets = secrets();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut responses = Responses::default();
    let client = octoscope_testkit::http().build().unwrap();

    // GIVEN a fake GitHub holding a small organisation, accepting our personal token and our app
    let spec = OrgSpec { repos: 2, pulls: 12, teams: 1, members: 3, runs: 3, deployments: 2, ..OrgSpec::default() };
    let hub =
        FakeHub::start_with(spec, HubConfig { token: GITHUB_TOKEN.into(), ..HubConfig::default() }).await.unwrap();
    let org = hub.org().login.clone();
    let app_id = hub.app().app_id.to_string();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, TEST_APP_PRIVATE_KEY).unwrap();
    let data = dir.path().join("data");

    // AND `octoscope serve` with two webhook secrets (rotation), two API tokens and the
    // personal token: its scheduled integrity check runs at start and resyncs the empty store
    let rotated = format!("{WEBHOOK_NEW},{WEBHOOK_OLD}");
    let tokens = format!("{API_A}, {API_B}");
    let server = Serve::start(
        &data,
        &[
            ("GITHUB_WEBHOOK_SECRET", &rotated),
            ("OCTOSCOPE_API_TOKENS", &tokens),
            ("GITHUB_TOKEN", GITHUB_TOKEN),
            ("GITHUB_API_URL", &hub.url),
            ("OCTOSCOPE_ORGS", &org),
            ("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "1"),
        ],
        &["--check-interval", "1h"],
    );
    let base = server.base.clone();
    wait_for_check(&client, &base, &mut responses).await;

    // WHEN GitHub delivers the organisation's history signed with the old secret, losing some
    let sent = hub
        .send_webhooks(
            &format!("{base}/webhook"),
            &WebhookSpec { secret: WEBHOOK_OLD.into(), drop_share: 0.2, seed: 3, ..WebhookSpec::default() },
        )
        .await
        .unwrap();
    assert!(!sent.dropped.is_empty(), "some deliveries are lost, for the check to redeliver: {sent:?}");
    assert!(sent.statuses.keys().all(|s| (200..300).contains(s)), "all accepted: {:?}", sent.statuses);

    // AND every example payload arrives signed with the new secret, the old one, a wrong one, and unsigned
    let fixtures = all_fixtures();
    for (i, (event, name, body)) in fixtures.iter().enumerate() {
        let (sig, expect_ok) = match i % 4 {
            0 => (Some(sign(WEBHOOK_NEW, body)), true),
            1 => (Some(sign(WEBHOOK_OLD, body)), true),
            2 => (Some(sign(WEBHOOK_WRONG, body)), false),
            _ => (None, false),
        };
        let resp = post_webhook(&client, &base, event, body.clone(), sig).await;
        let (status, text) = responses.keep(format!("POST /webhook {event}/{name}"), resp).await;
        if expect_ok {
            assert!((200..300).contains(&status), "{event}/{name}: {status} {text}");
        } else {
            assert_eq!(status, 401, "{event}/{name}: {text}");
        }
    }
    // AND a malformed signature, and a signature of the secret's own text
    for sig in [format!("sha256={WEBHOOK_NEW}"), format!("sha256={}", hex::encode(WEBHOOK_OLD))] {
        let resp = post_webhook(&client, &base, "ping", b"{}".to_vec(), Some(sig)).await;
        let (status, _) = responses.keep("POST /webhook with a malformed signature".into(), resp).await;
        assert_eq!(status, 401);
    }

    // AND the API is called with each valid token, wrong ones, other schemes and none
    for path in API_PATHS {
        let url = format!("{base}{path}");
        let tries: Vec<(&str, Option<String>, bool)> = vec![
            ("token A", Some(format!("Bearer {API_A}")), true),
            ("token B, lower-case scheme", Some(format!("bearer {API_B}")), true),
            ("a prefix of token A", Some(format!("Bearer {API_SHORT}")), false),
            ("token A and more", Some(format!("Bearer {API_A}X")), false),
            ("a wrong token", Some(format!("Bearer {API_WRONG}")), false),
            ("token A as Basic credentials", Some(format!("Basic {}", STANDARD.encode(format!("x:{API_A}")))), false),
            ("token A without a scheme", Some(API_A.to_owned()), false),
            ("no token", None, false),
        ];
        for (what, auth, valid) in tries {
            let mut req = client.get(&url);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let (status, text) = responses.keep(format!("GET {path} with {what}"), req.send().await.unwrap()).await;
            if valid {
                assert_ne!(status, 401, "GET {path} with {what}: {text}");
            } else {
                assert_eq!(status, 401, "GET {path} with {what}: {text}");
            }
        }
    }
    // AND the token arrives in a query string, where it is not accepted
    let resp = client.get(format!("{base}/api/health?access_token={API_B}")).send().await.unwrap();
    let (status, _) = responses.keep("GET /api/health?access_token=…".into(), resp).await;
    assert_eq!(status, 401);

    // AND `octoscope check` runs with the personal token: it redelivers what was lost, and resyncs
    let github_env = [("GITHUB_API_URL", hub.url.as_str()), ("OCTOSCOPE_ORGS", org.as_str())];
    let mut env = github_env.to_vec();
    env.push(("GITHUB_TOKEN", GITHUB_TOKEN));
    let (code, said) = run(trace_command(&["check"], &data, &env));
    assert_eq!(code, Some(0), "octoscope check with a token: {said}");
    outputs.push(("octoscope check (personal token)".into(), said));

    // AND as the GitHub App, its key given as text (installation found by the check) and as a file
    let mut env = github_env.to_vec();
    env.extend([("GITHUB_APP_ID", app_id.as_str()), ("GITHUB_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY)]);
    let (code, said) = run(trace_command(&["check"], &data, &env));
    assert_eq!(code, Some(0), "octoscope check as the app: {said}");
    outputs.push(("octoscope check (app, key as text)".into(), said));
    let installation = hub.app().installation_id.to_string();
    let key_path = key_file.to_string_lossy().into_owned();
    let mut env = github_env.to_vec();
    env.extend([
        ("GITHUB_APP_ID", app_id.as_str()),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key_path.as_str()),
        ("GITHUB_APP_INSTALLATION_ID", installation.as_str()),
    ]);
    let (code, said) = run(trace_command(&["backfill", "--org", &org], &data, &env));
    assert_eq!(code, Some(0), "octoscope backfill as the app: {said}");
    outputs.push(("octoscope backfill (app, key file)".into(), said));
    assert!(hub.installation_tokens_minted() >= 2, "each app run minted an installation token");

    // AND the API shows what the checks did, to each valid token
    for path in ["/api/integrity", "/api/deliveries", "/api/repos", "/api/pulls?state=all"] {
        let resp = client.get(format!("{base}{path}")).bearer_auth(API_B).send().await.unwrap();
        let (status, _) = responses.keep(format!("GET {path} after the checks"), resp).await;
        assert_eq!(status, 200);
    }

    // AND a webhook rule is made through the API: its signing secret is in the creation's answer, once
    let mut shown_once: Vec<(String, String)> = Vec::new(); // (the secret it shows, the answer)
    let rules = format!("{base}/api/rules");
    let webhook_rule = |url: &str| json!({ "on": "pull_request.merged", "target": { "type": "webhook", "url": url } });
    let mut once = Responses::default();
    let resp = client.post(&rules).bearer_auth(API_A).json(&webhook_rule("http://127.0.0.1:9/hook")).send().await;
    let (status, body) = once.keep("POST /api/rules (a webhook)".into(), resp.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let rule = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{body}");
    assert_eq!(body.matches(first.as_str()).count(), 1, "the creation shows the secret once: {body}");
    shown_once.push(("webhook rule secret (first)".into(), once.0.pop().unwrap()));
    secrets.push(Secret::whsec("webhook rule secret (first)", &first));
    // AND pointed at a receiver verifying with it, a test is sent and verified there
    let first_receiver = Receiver::start(&first, &[]);
    let url = format!("{rules}/{rule}");
    let (status, put) =
        call(&client, &mut responses, reqwest::Method::PUT, url, Some(&webhook_rule(&first_receiver.url()))).await;
    assert_eq!(status, 200, "{put}");
    assert!(put["secret"].is_null(), "a replacement keeps the secret, unshown: {put}");
    test_delivered(&client, &base, &mut responses, &rule).await;
    let got = first_receiver.records();
    assert_eq!((got.len(), &got[0]["verified"]), (1, &json!(true)), "{got:#?}");

    // AND its secret is rotated: the new one is in the rotation's answer, once, and the old one is not
    let resp = client.post(format!("{rules}/{rule}/rotate-secret")).bearer_auth(API_A).send().await;
    let (status, body) = once.keep("POST /api/rules/{id}/rotate-secret".into(), resp.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let rotated = serde_json::from_str::<Value>(&body).unwrap()["secret"].as_str().unwrap().to_owned();
    assert!(rotated.starts_with("whsec_") && rotated != first, "{body}");
    assert_eq!(body.matches(rotated.as_str()).count(), 1, "the rotation shows the new secret once: {body}");
    shown_once.push(("webhook rule secret (rotated)".into(), once.0.pop().unwrap()));
    secrets.push(Secret::whsec("webhook rule secret (rotated)", &rotated));
    // AND a test to a receiver verifying with the new secret is delivered, signed with both
    let second_receiver = Receiver::start(&rotated, &[]);
    let url = format!("{rules}/{rule}");
    let (status, put) =
        call(&client, &mut responses, reqwest::Method::PUT, url, Some(&webhook_rule(&second_receiver.url()))).await;
    assert_eq!(status, 200, "{put}");
    test_delivered(&client, &base, &mut responses, &rule).await;
    let got = second_receiver.records();
    assert_eq!((got.len(), &got[0]["verified"]), (1, &json!(true)), "{got:#?}");
    let signatures = got[0]["headers"]["webhook-signature"].as_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "one signature per secret during a rotation: {signatures}");

    // AND a Slack rule whose URL path holds a canary is made and sent to; one to a metadata address is refused
    let (slack_port, slack_seen) = slack_sink();
    let slack_path = format!("/services/T0OCTO/B0OCTO/{SLACK_CANARY}");
    let slack = json!({ "on": "pull_request.merged", "target": {
        "type": "slack", "url": format!("http://127.0.0.1:{slack_port}{slack_path}") } });
    let (status, made) = call(&client, &mut responses, reqwest::Method::POST, rules.clone(), Some(&slack)).await;
    assert_eq!(status, 201, "{made}");
    let slack_rule = made["id"].as_str().unwrap().to_owned();
    test_delivered(&client, &base, &mut responses, &slack_rule).await;
    assert_eq!(*slack_seen.lock().unwrap(), [format!("POST {slack_path} HTTP/1.1")], "sent to the whole URL");
    let refused = json!({ "on": "pull_request.merged", "target": {
        "type": "slack", "url": format!("http://169.254.169.254{slack_path}") } });
    let (status, body) = call(&client, &mut responses, reqwest::Method::POST, rules.clone(), Some(&refused)).await;
    assert_eq!(status, 400, "{body}");
    // AND a repository_dispatch rule sends a test with the personal token
    let dispatch = json!({ "on": "pull_request.merged", "target": {
        "type": "repository_dispatch", "repo": format!("{org}/repo-0") } });
    let (status, made) = call(&client, &mut responses, reqwest::Method::POST, rules.clone(), Some(&dispatch)).await;
    assert_eq!(status, 201, "{made}");
    let dispatch_rule = made["id"].as_str().unwrap().to_owned();
    test_delivered(&client, &base, &mut responses, &dispatch_rule).await;
    let dispatched = hub.dispatches();
    assert_eq!(dispatched.len(), 1, "{dispatched:?}");
    assert!(dispatched[0].token == GITHUB_TOKEN, "the dispatch was authorised by the personal token");

    // AND the rules, each rule, the log and each notification with its attempts are read
    let (status, listed) = call(&client, &mut responses, reqwest::Method::GET, rules.clone(), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(3)), "{listed}");
    let shown = listed["items"].as_array().unwrap().iter().find(|r| r["id"] == slack_rule.as_str()).cloned();
    let shown_url = format!("http://127.0.0.1:{slack_port}/…");
    assert_eq!(shown.map(|r| r["target"].clone()), Some(json!({ "type": "slack", "url": shown_url })), "{listed}");
    for id in [&rule, &slack_rule, &dispatch_rule] {
        let (status, one) = call(&client, &mut responses, reqwest::Method::GET, format!("{rules}/{id}"), None).await;
        assert_eq!(status, 200, "{one}");
    }
    let (status, log) =
        call(&client, &mut responses, reqwest::Method::GET, format!("{base}/api/notifications"), None).await;
    assert_eq!(status, 200, "{log}");
    let notes = log["items"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 4, "{log:#}");
    for note in notes {
        let url = format!("{base}/api/notifications/{}", note["id"].as_str().unwrap());
        let (status, one) = call(&client, &mut responses, reqwest::Method::GET, url, None).await;
        assert_eq!((status, one["attempt_log"].as_array().map(Vec::len)), (200, Some(1)), "{one}");
    }
    let serve_out = server.out.clone();
    drop(server);

    // AND configurations holding secrets are refused, each naming its variable
    let short_token = BAD_SHORT_TOKEN.to_owned();
    let token_list = format!("{BAD_LIST_TOKEN},,");
    let secret_list = format!("{BAD_LIST_SECRET},,x");
    let refused = [
        ("OCTOSCOPE_API_TOKENS", "serve", vec![("OCTOSCOPE_API_TOKENS", short_token.as_str())]),
        ("OCTOSCOPE_API_TOKENS", "serve", vec![("OCTOSCOPE_API_TOKENS", token_list.as_str())]),
        ("GITHUB_WEBHOOK_SECRET", "serve", vec![("GITHUB_WEBHOOK_SECRET", secret_list.as_str())]),
        (
            "GITHUB_APP_PRIVATE_KEY",
            "check",
            vec![("GITHUB_APP_ID", app_id.as_str()), ("GITHUB_APP_PRIVATE_KEY", BAD_PEM)],
        ),
        ("GITHUB_TOKEN", "check", vec![("GITHUB_TOKEN", BAD_GITHUB_TOKEN), ("GITHUB_APP_ID", app_id.as_str())]),
        (
            "GITHUB_APP_INSTALLATION_ID",
            "check",
            vec![
                ("GITHUB_APP_ID", app_id.as_str()),
                ("GITHUB_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY),
                ("GITHUB_APP_INSTALLATION_ID", BAD_LIST_TOKEN),
            ],
        ),
    ];
    for (var, command, env) in refused {
        let mut cmd = trace_command(&[command], &data, &env);
        if command == "serve" {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let (code, said) = run(cmd);
        assert_eq!(code, Some(2), "{var} refused: {said}");
        assert!(said.contains(var), "the refusal names {var}: {said}");
        outputs.push((format!("refused {var}"), said));
    }
    // AND secrets GitHub does not accept: an unknown personal token, a broken private key
    let mut broken_pem = TEST_APP_PRIVATE_KEY.lines().collect::<Vec<_>>();
    broken_pem.remove(3);
    let broken_pem = broken_pem.join("\n");
    for (what, env) in [
        ("unknown token", vec![("GITHUB_TOKEN", BAD_GITHUB_TOKEN.to_owned())]),
        ("broken key", vec![("GITHUB_APP_ID", app_id.clone()), ("GITHUB_APP_PRIVATE_KEY", broken_pem.clone())]),
    ] {
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend(github_env);
        let (code, said) = run(trace_command(&["check"], &data, &env));
        assert_ne!(code, Some(0), "octoscope check with an {what} fails: {said}");
        outputs.push((format!("octoscope check ({what})"), said));
    }

    // THEN nothing any process printed, and no response, holds a secret in any form
    outputs.push(("octoscope serve".into(), serve_out.text()));
    let mut found = Vec::new();
    for (what, text) in &outputs {
        found.extend(leaks(what, text, &secrets));
    }
    for response in &responses.0 {
        let what = response.lines().next().unwrap_or_default();
        found.extend(leaks(&format!("the response to {what}"), response, &secrets));
    }
    // AND the answers that show a secret once show no other
    for (shows, response) in &shown_once {
        let others: Vec<Secret> = secrets.iter().filter(|s| s.name != *shows).cloned().collect();
        let what = response.lines().next().unwrap_or_default();
        found.extend(leaks(&format!("the response to {what}"), response, &others));
    }
    // AND the scan had something to read: trace lines of the webhook path and of GitHub requests
    let serve_log = &outputs.last().unwrap().1;
    let lines: usize = outputs.iter().map(|(_, t)| t.lines().count()).sum();
    assert!(serve_log.contains("TRACE"), "serve logged at trace level");
    assert!(outputs[0].1.contains("TRACE"), "check logged at trace level");
    eprintln!(
        "scanned {lines} lines of output from {} runs and {} responses for {} secrets",
        outputs.len(),
        responses.0.len(),
        secrets.len()
    );
    assert!(found.is_empty(), "{} leak(s):\n{}", found.len(), found.join("\n"));
}

#[test]
fn the_scanner_finds_each_kind_of_planted_leak() {
    // GIVEN the secrets WHEN a line holds one in any of the forms scanned THEN it is found, named
    let secrets = secrets();
    let pem_line = TEST_APP_PRIVATE_KEY.lines().nth(5).unwrap();
    let planted = [
        ("raw", format!("DEBUG request: authorization=Bearer {API_B}")),
        ("hex", format!("key={}", hex::encode(WEBHOOK_OLD))),
        ("base64", format!("Authorization: Basic {}", STANDARD.encode(format!("user:{GITHUB_TOKEN}")))),
        ("base64 offset 1", STANDARD.encode(format!("a{WEBHOOK_NEW}"))),
        ("base64 offset 2", URL_SAFE_NO_PAD.encode(format!("ab{API_A}"))),
        ("pem line", format!("error parsing key: {pem_line}")),
        ("pem escaped", serde_json::to_string(&serde_json::json!({ "key": TEST_APP_PRIVATE_KEY })).unwrap()),
        ("installation token", "token ghs_fakehub_12 minted".to_owned()),
        ("jwt", format!("Bearer {APP_JWT_HEADER}.eyJpYXQiOjF9.c2ln")),
        ("slack path", format!("POST http://127.0.0.1:9/services/T/B/{SLACK_CANARY}")),
    ];
    for (form, text) in planted {
        let found = leaks("a planted line", &text, &secrets);
        assert!(!found.is_empty(), "{form}: {text}");
    }
    // AND a whsec_ secret is found whole, without its prefix, and as its key's hex or base64 (at any offset)
    let whsec = "whsec_MfKQ9r0k2bdYV2rkHqA6T2b4bYzQJ4Zf";
    let key = STANDARD.decode(&whsec["whsec_".len()..]).unwrap();
    let rule_secret = [Secret::whsec("a rule's secret", whsec)];
    for text in [
        format!("{{\"secret\":\"{whsec}\"}}"),
        format!("key={}", &whsec["whsec_".len()..]),
        format!("key bytes {}", hex::encode(&key)),
        STANDARD.encode([b"x".as_slice(), &key].concat()),
    ] {
        assert!(!leaks("a planted line", &text, &rule_secret).is_empty(), "{text}");
    }
    // AND a clean line, or one with a different token, is not flagged
    let clean = "INFO webhook accepted delivery=72d3162e event=pull_request; Bearer apitok-Zcanary-000000000000";
    assert_eq!(leaks("a clean line", clean, &secrets), Vec::<String>::new());
}

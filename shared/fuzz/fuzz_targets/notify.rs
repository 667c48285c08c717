//! Notifications: the fields of an event, as a hostile GitHub user can set
//! them (titles, branch names, logins, labels: any unicode, markup, control
//! characters, huge strings), rendered into each kind of message, and
//! whatever the receiver answers, through the product's `Sender::send_one`
//! (the message, its signature, the transport, what follows the answer).
//! The rule and notification stores are in memory here (the harness's; the
//! SQLite ones are not what is under test), the clock fixed.
//!
//! Input: 6 bytes, then lines.
//! - byte 0: the event (`RuleEvent::RULES`, then `test`), modulo 11;
//! - byte 1: bits 0–1 the target (0 webhook, 1 Slack, 2 `repository_dispatch`,
//!   3 webhook), bit 2 `late`, bit 3 two signing secrets (a rotation), bit 4
//!   a dashboard URL, bit 5 over HTTP (the product's `HttpNotifyTransport`
//!   to a receiver on loopback, else an in-process transport), bits 6–7 the
//!   rule (0, 1: as it is; 2: its target disabled; 3: deleted);
//! - byte 2: attempts made so far, modulo 21; byte 3: the policy's attempts,
//!   1 + (byte modulo 20); bytes 4–5: its horizon, 60–604,800 s;
//! - line 1, the answer: `timeout`, `unreachable TEXT`, `refused TEXT`, or a
//!   status (not a number: 200), optionally followed by ` *N`: the body
//!   repeated N times (at most 100 KB);
//! - line 2: the answer's `Retry-After` (over HTTP; empty: none);
//! - line 3: the dispatch's `event_type` (empty: none); line 4: the target
//!   URL's path (a Slack URL's path is its secret);
//! - then `key=value` lines up to an empty line: the transition's data
//!   (`value` as JSON when it is JSON without floats, nested at most 16
//!   deep, else as a string; `key*N=value`: the string repeated N times, at
//!   most 100 KB; an empty key: the data is that value, not an object);
//! - the rest: the answer's body.
//!
//! Invariants: no panic. `send_one` attempts once and records that attempt,
//! numbered after the ones before, its excerpt at most 200 characters without
//! control characters; a rule deleted or disabled is not sent to. Every
//! body is JSON. Webhook: `{type, timestamp, data}` with every field of the
//! data as it was (`late`, `rule_id`, `notification_id` the notification's),
//! `webhook-id` the notification's id, `webhook-timestamp` the clock's, one
//! `v1,` signature per secret that verifies (ring's HMAC, not the product's)
//! and no longer does once the body changes. Slack: no `<` or `>` from user
//! text and every `&` an escape, the repository, title, branch, workflow,
//! environment, label and error escaped in the text when the event names
//! them (unless cut short); a header of at most 150 characters, a section of at
//! most 3,000 that is also the fallback text;
//! links `<https://…|label>` only. Dispatch: to `{api}/repos/OWNER/NAME/dispatches`,
//! the rule's `event_type` or `octoscope`, a `client_payload` of the 7
//! documented keys (GitHub allows 10) carrying the data as it was. The
//! answer: 2xx delivered; 410 the target disabled (the reason names the host,
//! never the path); 408, 429, 5xx, a timeout, no connection: a retry after
//! the policy's delay ±20 % (never more than 1.2 × the horizon), or given up
//! after the last attempt; a refusal, 3xx and every other status failed;
//! `Retry-After` changes nothing. Over HTTP: the receiver got the request
//! once (redirects not followed) with the same body and headers, and at
//! most 4 KB of its answer was read.
#![no_main]

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::fuzz_target;
use octoscope::adapters::notify_http::{HttpNotifyTransport, HttpTransportConfig};
use octoscope::domain::{
    AfterAttempt, Attempt, Notification, NotificationFilter, NotificationId, RepoName, Rule, RuleEvent, RuleFilters,
    RuleId, RuleStats, TargetSecrets, TargetSpec, Timestamp, Transition,
};
use octoscope::error::StoreError;
use octoscope::ports::{
    Answer, Clock, NotificationLog, NotifyTransport, Outbound, Page, PageRequest, RuleStore, SendError,
};
use octoscope::services::notify::send::{RetryPolicy, Sender, Sent, StaticToken};
use octoscope_fuzz::{line, runtime};
use serde_json::{Map, Value};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static RECEIVER: LazyLock<Receiver> = LazyLock::new(|| RT.block_on(Receiver::start()));
static HTTP: LazyLock<HttpNotifyTransport> = LazyLock::new(|| {
    let config = HttpTransportConfig {
        allow_private: true,
        timeout: Duration::from_secs(5),
        github_api: Some(RECEIVER.url.clone()),
    };
    HttpNotifyTransport::new(config).expect("the transport")
});

const RULE_ID: &str = "rul_00000000000000000001";
const SECRETS: [&str; 2] = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldC1mb3ItZnV6emluZw=="];
const TOKEN: &str = "fuzz-dispatch-token";
const DASHBOARD: &str = "https://octo.example/";
const MAX_STRING: usize = 100_000;
/// The transport's cap on an answer (`MAX_ANSWER_BYTES`, notifications.md: "4 KB of an answer read at most").
const MAX_ANSWER: usize = 4096;

fn at(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

#[derive(Debug, Clone)]
enum Scripted {
    Status(u16),
    Timeout,
    Unreachable(String),
    Refused(String),
}

struct Input {
    event: RuleEvent,
    kind: u8,
    late: bool,
    rotated: bool,
    dashboard: bool,
    http: bool,
    rule_state: u8,
    attempts_so_far: u32,
    policy: RetryPolicy,
    answer: Scripted,
    body: Vec<u8>,
    retry_after: String,
    event_type: Option<String>,
    path: String,
    data: Value,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repeated(s: &str, n: &str) -> String {
    let n: usize = n.trim().parse().unwrap_or(1);
    let n = n.min(MAX_STRING / s.len().max(1)).max(1);
    s.repeat(n)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

fn value(v: &str) -> Value {
    match serde_json::from_str::<Value>(v) {
        Ok(j) if !has_float(&j) && depth(&j) <= 16 => j,
        _ => Value::String(v.to_owned()),
    }
}

fn parse(data: &[u8]) -> Option<Input> {
    let (head, rest) = data.split_at_checked(6)?;
    let events: Vec<RuleEvent> = RuleEvent::RULES.into_iter().chain([RuleEvent::Test]).collect();
    let horizon = 60 + u64::from(u16::from_be_bytes([head[4], head[5]])) * (604_800 - 60) / 65_535;
    let (answer_line, rest) = line(rest);
    let (retry_after, rest) = line(rest);
    let (event_type, rest) = line(rest);
    let (path, mut rest) = line(rest);
    let answer_line = text(answer_line);
    let (answer_word, times) = match answer_line.rsplit_once(" *") {
        Some((a, n)) => (a.to_owned(), Some(n.to_owned())),
        None => (answer_line, None),
    };
    let answer = if answer_word == "timeout" {
        Scripted::Timeout
    } else if let Some(why) = answer_word.strip_prefix("unreachable") {
        Scripted::Unreachable(why.trim().to_owned())
    } else if let Some(why) = answer_word.strip_prefix("refused") {
        Scripted::Refused(why.trim().to_owned())
    } else {
        Scripted::Status(answer_word.trim().parse().unwrap_or(200))
    };
    let mut fields = Map::new();
    let mut whole = None;
    loop {
        let (l, r) = line(rest);
        rest = r;
        if l.is_empty() {
            break;
        }
        let l = text(l);
        let (key, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        let (key, v) = match key.split_once('*') {
            Some((k, n)) => (k, Value::String(repeated(v, n))),
            None => (key, value(v)),
        };
        if key.is_empty() {
            whole = Some(v);
        } else {
            fields.insert(key.to_owned(), v);
        }
    }
    let body = match &times {
        Some(n) => repeated(&text(rest), n).into_bytes(),
        None => rest.to_vec(),
    };
    Some(Input {
        event: events[usize::from(head[0]) % events.len()],
        kind: (head[1] & 3) % 3,
        late: head[1] & 4 != 0,
        rotated: head[1] & 8 != 0,
        dashboard: head[1] & 16 != 0,
        http: head[1] & 32 != 0,
        rule_state: head[1] >> 6,
        attempts_so_far: u32::from(head[2]) % 21,
        policy: RetryPolicy::new(1 + u32::from(head[3]) % 20, Duration::from_secs(horizon)),
        answer,
        body,
        retry_after: text(retry_after),
        event_type: Some(text(event_type)).filter(|e| !e.is_empty()),
        path: text(path),
        data: whole.unwrap_or(Value::Object(fields)),
    })
}

// ---- the stores, the clock and the transports (the harness's) ----

struct FixedClock(Timestamp);
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[derive(Default)]
struct MemLog {
    note: Mutex<Option<Notification>>,
    recorded: Mutex<Vec<(Attempt, AfterAttempt)>>,
}

#[async_trait]
impl NotificationLog for MemLog {
    async fn admit(&self, _: &Notification) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn take_due(&self, _: Timestamp, _: Duration, _: usize) -> Result<Vec<Notification>, StoreError> {
        Ok(vec![])
    }
    async fn get_notification(&self, id: &NotificationId) -> Result<Option<Notification>, StoreError> {
        Ok(self.note.lock().unwrap().clone().filter(|n| &n.id == id))
    }
    async fn record_attempt(&self, attempt: &Attempt, next: &AfterAttempt) -> Result<(), StoreError> {
        self.recorded.lock().unwrap().push((attempt.clone(), next.clone()));
        Ok(())
    }
    async fn list_notifications(
        &self,
        _: &NotificationFilter,
        _: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        Ok(Page { items: vec![], next_cursor: None })
    }
    async fn attempts(&self, _: &NotificationId) -> Result<Vec<Attempt>, StoreError> {
        Ok(vec![])
    }
    async fn rule_stats(&self, _: &RuleId, _: Timestamp) -> Result<RuleStats, StoreError> {
        Ok(RuleStats::default())
    }
}

#[derive(Default)]
struct MemRules {
    rule: Mutex<Option<Rule>>,
    disabled: Mutex<Vec<(RuleId, String)>>,
}

#[async_trait]
impl RuleStore for MemRules {
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        *self.rule.lock().unwrap() = Some(rule.clone());
        Ok(())
    }
    async fn get_rule(&self, id: &RuleId) -> Result<Option<Rule>, StoreError> {
        Ok(self.rule.lock().unwrap().clone().filter(|r| &r.id == id))
    }
    async fn list_rules(&self, _: &PageRequest) -> Result<Page<Rule>, StoreError> {
        Ok(Page { items: vec![], next_cursor: None })
    }
    async fn delete_rule(&self, _: &RuleId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn rules_for(&self, _: RuleEvent) -> Result<Vec<Rule>, StoreError> {
        Ok(vec![])
    }
    async fn disable_rule(&self, id: &RuleId, reason: &str) -> Result<(), StoreError> {
        self.disabled.lock().unwrap().push((id.clone(), reason.to_owned()));
        Ok(())
    }
}

/// What the transport answered the sender, as far as the classification goes.
#[derive(Debug, Clone)]
enum Got {
    Answer(u16, Vec<u8>),
    Refused,
    Retryable,
}

/// Records each request and what came back; over HTTP through the product's
/// transport, otherwise answering the script itself.
struct Recorder {
    http: bool,
    script: (Scripted, Vec<u8>),
    sent: Mutex<Vec<(Outbound, Got)>>,
}

#[async_trait]
impl NotifyTransport for Recorder {
    async fn post(&self, req: &Outbound) -> Result<Answer, SendError> {
        let result = if self.http {
            HTTP.post(req).await
        } else {
            match &self.script.0 {
                Scripted::Status(s) => Ok(Answer { status: *s, body: self.script.1.clone() }),
                Scripted::Timeout => Err(SendError::Timeout(Duration::from_secs(10))),
                Scripted::Unreachable(why) => Err(SendError::Unreachable(anyhow::anyhow!("{why}"))),
                Scripted::Refused(why) => Err(SendError::Refused(why.clone())),
            }
        };
        let got = match &result {
            Ok(a) => Got::Answer(a.status, a.body.clone()),
            Err(SendError::Refused(_)) => Got::Refused,
            Err(_) => Got::Retryable,
        };
        self.sent.lock().unwrap().push((req.clone(), got));
        result
    }
}

/// A receiver on loopback: answers every request with the scripted reply and keeps what it got.
struct Receiver {
    url: String,
    reply: Arc<Mutex<(u16, Vec<(String, String)>, Vec<u8>)>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>,
}

impl Receiver {
    async fn start() -> Self {
        let reply: Arc<Mutex<(u16, Vec<(String, String)>, Vec<u8>)>> = Arc::new(Mutex::new((200, vec![], vec![])));
        let seen: Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>> = Arc::default();
        let (r, s) = (reply.clone(), seen.clone());
        let app = Router::new().fallback(move |req: Request<Body>| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
                s.lock().unwrap().push((parts.headers, bytes));
                let (status, headers, body) = r.lock().unwrap().clone();
                let mut resp = Response::new(Body::from(body));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                for (n, v) in headers {
                    if let (Ok(n), Ok(v)) = (n.parse::<axum::http::HeaderName>(), HeaderValue::from_str(&v)) {
                        resp.headers_mut().insert(n, v);
                    }
                }
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { url, reply, seen }
    }
}

// ---- the invariants ----

/// Slack's escaping holds: no `<` or `>`, every `&` begins `&amp;`, `&lt;` or `&gt;`
/// (a text cut short never ends in part of one).
fn assert_escaped(what: &str, s: &str) {
    // Byte searches (memchr), not char by char: this runs over 100 KB strings.
    let b = s.as_bytes();
    assert!(!b.contains(&b'<') && !b.contains(&b'>'), "{what}: a raw < or > in {:?}", clip(s));
    for (i, _) in s.match_indices('&') {
        let tail = &s[i..];
        let escape = ["&amp;", "&lt;", "&gt;"].iter().any(|e| tail.starts_with(e));
        assert!(escape, "{what}: an & that is no escape in {:?}", clip(tail));
    }
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn header<'a>(out: &'a Outbound, name: &str) -> &'a str {
    let mut found = out.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let (_, v) = found.next().unwrap_or_else(|| panic!("no {name} header"));
    assert!(found.next().is_none(), "two {name} headers");
    v
}

/// Standard Webhooks verification with ring: how many of `secrets` a signature in `header` verifies.
fn verified(secrets: &[&str], id: &str, ts: &str, body: &[u8], header: &str) -> usize {
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    let sigs: Vec<Vec<u8>> = header
        .split(' ')
        .map(|s| B64.decode(s.strip_prefix("v1,").expect("a v1, signature")).expect("base64"))
        .collect();
    secrets
        .iter()
        .filter(|secret| {
            let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
            sigs.iter().any(|sig| ring::hmac::verify(&key, &signed, sig).is_ok())
        })
        .count()
}

fn check_webhook(input: &Input, note: &Notification, secrets: &[&str], url: &str, out: &Outbound, now: Timestamp) {
    assert_eq!(out.url, url);
    let (id, ts, sig) = (header(out, "webhook-id"), header(out, "webhook-timestamp"), header(out, "webhook-signature"));
    assert_eq!(id, note.id.as_str());
    assert_eq!(ts, now.timestamp().to_string());
    assert_eq!(sig.split(' ').count(), secrets.len(), "one signature per secret");
    assert_eq!(verified(secrets, id, ts, &out.body, sig), secrets.len(), "a secret whose signature does not verify");
    let mut tampered = out.body.clone();
    tampered.push(b' ');
    assert_eq!(verified(secrets, id, ts, &tampered, sig), 0, "a signature verifies a changed body");
    let body: Value = serde_json::from_slice(&out.body).expect("the webhook body is JSON");
    let top = body.as_object().expect("an object");
    assert_eq!(top.len(), 3, "type, timestamp, data: {:?}", top.keys().collect::<Vec<_>>());
    assert_eq!(top["type"], note.event.as_str());
    assert_eq!(top["timestamp"], note.occurred_at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let data = top["data"].as_object().expect("data is an object");
    assert_eq!(data["late"], input.late);
    assert_eq!(data["rule_id"], RULE_ID);
    assert_eq!(data["notification_id"], note.id.as_str());
    let given: Map<String, Value> = match &input.data {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other.clone())]),
    };
    let own = ["late", "rule_id", "notification_id"];
    for (k, v) in &given {
        if !own.contains(&k.as_str()) {
            assert_eq!(data.get(k), Some(v), "data field {k:?} not carried as it was");
        }
    }
    for k in data.keys() {
        assert!(own.contains(&k.as_str()) || given.contains_key(k), "data field {k:?} from nowhere");
    }
}

fn nonempty<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn check_slack(input: &Input, url: &str, out: &Outbound) {
    assert_eq!(out.url, url);
    let body: Value = serde_json::from_slice(&out.body).expect("the Slack body is JSON");
    let text = body["text"].as_str().expect("a text");
    assert_escaped("text", text);
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!((2..=3).contains(&blocks.len()), "{} blocks", blocks.len());
    assert_eq!(blocks[0]["type"], "header");
    let head = blocks[0]["text"]["text"].as_str().expect("a header text");
    assert!(head.chars().count() <= 150, "a header of {} characters", head.chars().count());
    assert_eq!(blocks[1]["type"], "section");
    let section = blocks[1]["text"]["text"].as_str().expect("a section text");
    let chars = section.chars().count();
    assert!(chars <= 3000, "a section of {chars} characters");
    assert_eq!(section, text, "the fallback text is the section's");
    if let Some(ctx) = blocks.get(2) {
        assert_eq!(ctx["type"], "context");
        let links = ctx["elements"][0]["text"].as_str().expect("links");
        let mut rest = links;
        loop {
            let inner = rest.strip_prefix('<').unwrap_or_else(|| panic!("not a link: {:?}", clip(rest)));
            let end = inner.find('>').expect("a link's end");
            let (target, label) = inner[..end].split_once('|').expect("<url|label>");
            assert!(target.starts_with("https://"), "a link to {:?}", clip(target));
            assert!(!target.contains(' ') && !label.contains('|'), "{:?}", clip(&inner[..end]));
            assert_escaped("a link's label", label);
            rest = &inner[end + 1..];
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix("  ·  ").unwrap_or_else(|| panic!("between links: {:?}", clip(rest)));
        }
    }
    // The event in words names what the user wrote, escaped.
    let d = &input.data;
    let mut named: Vec<&str> = vec![];
    use RuleEvent::*;
    let e = input.event;
    if matches!(
        e,
        BranchMoved
            | PullRequestOpened
            | PullRequestMerged
            | ReviewPickupBreached
            | WorkflowRunFailed
            | WorkflowRunRecovered
            | DeploymentFailed
    ) {
        named.extend(nonempty(d, "repo"));
    }
    if matches!(e, PullRequestOpened | PullRequestMerged | ReviewPickupBreached) {
        named.extend(nonempty(d, "title"));
    }
    if matches!(e, BranchMoved | WorkflowRunFailed | WorkflowRunRecovered) {
        named.extend(nonempty(d, "branch"));
    }
    if matches!(e, WorkflowRunFailed | WorkflowRunRecovered) {
        named.extend(nonempty(d, "workflow"));
    }
    if e == DeploymentFailed {
        named.extend(nonempty(d, "environment"));
    }
    if e == CiQueueTimeRegressed {
        named.extend(nonempty(d, "label"));
    }
    if e == ResyncFailed {
        named.extend(nonempty(d, "error"));
    }
    // A text cut short at 3,000 characters (less a split escape) names what fits.
    let cut = text.ends_with('…') && text.chars().count() >= 2996;
    for n in named.into_iter().filter(|_| !cut) {
        assert!(text.contains(&esc(n)), "{:?} is not in the text, escaped: {:?}", clip(n), clip(text));
    }
    if input.late && !cut {
        assert!(text.ends_with(" (found late, by the integrity check)"), "{:?}", clip(text));
    }
}

fn check_dispatch(input: &Input, note: &Notification, api: &str, out: &Outbound) {
    assert_eq!(out.url, format!("{api}/repos/acme/deploy/dispatches"));
    assert_eq!(header(out, "authorization"), format!("Bearer {TOKEN}"));
    let body: Value = serde_json::from_slice(&out.body).expect("the dispatch body is JSON");
    let top = body.as_object().expect("an object");
    assert_eq!(top.len(), 2);
    assert_eq!(top["event_type"], input.event_type.as_deref().unwrap_or("octoscope"));
    let payload = top["client_payload"].as_object().expect("client_payload");
    assert!(payload.len() <= 10, "{} keys in client_payload: GitHub allows 10", payload.len());
    let keys = ["event", "notification_id", "rule_id", "transition", "occurred_at", "late", "data"];
    assert_eq!(payload.len(), keys.len());
    assert!(keys.iter().all(|k| payload.contains_key(*k)), "{:?}", payload.keys().collect::<Vec<_>>());
    assert_eq!(payload["event"], note.event.as_str());
    assert_eq!(payload["notification_id"], note.id.as_str());
    assert_eq!(payload["rule_id"], RULE_ID);
    assert_eq!(payload["transition"], note.transition_key.as_str());
    assert_eq!(payload["late"], input.late);
    assert_eq!(payload["data"], input.data, "the data not carried as it was");
}

fn assert_excerpt(a: &Attempt) {
    assert!(a.excerpt.chars().count() <= 200, "an excerpt of {} characters", a.excerpt.chars().count());
    assert!(!a.excerpt.chars().any(char::is_control), "a control character in {:?}", clip(&a.excerpt));
}

/// The delay after attempt `n` as notifications.md gives it: horizon / (2^(attempts−1) − 1), doubling.
fn nominal_secs(policy: RetryPolicy, n: u32) -> f64 {
    let parts = ((1u64 << (policy.attempts - 1).min(31)) - 1).max(1) as f64;
    policy.horizon.as_secs_f64() / parts * f64::from(1u32 << (n - 1).min(31))
}

fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

fn run(input: &Input) {
    let now = at("2026-12-04T10:05:00Z");
    // Over HTTP only statuses a server can send as the answer (no 1xx).
    let http = input.http && matches!(input.answer, Scripted::Status(200..=999));
    let base = if http { RECEIVER.url.clone() } else { "https://hooks.example.com".to_owned() };
    let api = if http { RECEIVER.url.clone() } else { "https://api.github.com".to_owned() };
    // Over HTTP the path is kept to what a URL holds as it is.
    let path: String = if http {
        input.path.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')).collect()
    } else {
        input.path.clone()
    };
    let url = format!("{base}/{}", path.trim_start_matches('/'));
    let secrets: Vec<&str> = if input.rotated { SECRETS.to_vec() } else { SECRETS[..1].to_vec() };
    let target = match input.kind {
        0 => TargetSpec::Webhook { url: url.clone() },
        1 => TargetSpec::Slack { url: url.clone() },
        _ => TargetSpec::RepositoryDispatch {
            repo: RepoName::parse("acme/deploy").unwrap(),
            event_type: input.event_type.clone(),
        },
    };
    let rule = Rule {
        id: RuleId::parse(RULE_ID).unwrap(),
        event: input.event,
        filters: RuleFilters::default(),
        secrets: TargetSecrets(if input.kind == 0 { secrets.iter().map(|s| s.to_string()).collect() } else { vec![] }),
        target,
        created_at: at("2026-12-01T00:00:00Z"),
        updated_at: at("2026-12-01T00:00:00Z"),
        disabled: (input.rule_state == 2).then(|| "hooks.example.com answered 410 Gone".to_owned()),
    };
    let key = format!(
        "{}:{}:{}",
        input.event.as_str(),
        nonempty(&input.data, "repo").unwrap_or(""),
        nonempty(&input.data, "branch").unwrap_or("")
    );
    let transition = Transition {
        event: input.event,
        key,
        repo: None,
        branch: None,
        author: None,
        environment: None,
        occurred_at: at("2026-12-04T09:59:59Z"),
        late: input.late,
        data: input.data.clone(),
    };
    let mut note = Notification::decide(&rule.id, &transition, at("2026-12-04T10:00:00Z"));
    note.attempts = input.attempts_so_far;
    let log = Arc::new(MemLog::default());
    *log.note.lock().unwrap() = Some(note.clone());
    let rules = Arc::new(MemRules::default());
    if input.rule_state != 3 {
        *rules.rule.lock().unwrap() = Some(rule.clone());
    }
    let transport =
        Arc::new(Recorder { http, script: (input.answer.clone(), input.body.clone()), sent: Mutex::default() });
    if http {
        let Scripted::Status(status) = input.answer else { unreachable!() };
        let mut headers = vec![];
        if !input.retry_after.is_empty() {
            headers.push(("retry-after".to_owned(), input.retry_after.clone()));
        }
        if (300..400).contains(&status) {
            headers.push(("location".to_owned(), format!("{}/redirected", RECEIVER.url)));
        }
        *RECEIVER.reply.lock().unwrap() = (status, headers, input.body.clone());
        RECEIVER.seen.lock().unwrap().clear();
    }
    let sender = Sender::new(log.clone(), rules.clone(), transport.clone(), Arc::new(FixedClock(now)))
        .with_retry(input.policy)
        .with_dashboard(input.dashboard.then(|| DASHBOARD.to_owned()))
        .with_github(api.clone(), Arc::new(StaticToken(TOKEN.to_owned())));
    let sent = RT.block_on(sender.send_one(&note)).expect("the in-memory stores never fail");
    let Sent::Attempted { attempt, next } = sent else { panic!("a pending notification was skipped: {sent:?}") };
    let n = input.attempts_so_far + 1;
    assert_eq!(attempt.number, n);
    assert_eq!(attempt.notification_id, note.id);
    assert_eq!(attempt.at, now);
    assert_excerpt(&attempt);
    assert_eq!(
        log.recorded.lock().unwrap().as_slice(),
        &[(attempt.clone(), next.clone())],
        "the attempt recorded once"
    );
    let requests = transport.sent.lock().unwrap().clone();
    if input.rule_state >= 2 {
        assert!(requests.is_empty(), "a disabled or deleted rule's target was sent to");
        let AfterAttempt::Failed(why) = &next else { panic!("a disabled or deleted rule: {next:?}") };
        assert!(why.starts_with(if input.rule_state == 2 { "target disabled: " } else { "rule deleted" }), "{why}");
        assert!(rules.disabled.lock().unwrap().is_empty());
        return;
    }
    assert_eq!(requests.len(), 1, "one request per attempt");
    let (out, got) = &requests[0];
    match input.kind {
        0 => check_webhook(input, &note, &secrets, &url, out, now),
        1 => check_slack(input, &url, out),
        _ => check_dispatch(input, &note, &api, out),
    }
    if http {
        let seen = RECEIVER.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "the receiver got {} requests (redirects are not followed)", seen.len());
        let (headers, body) = &seen[0];
        assert!(body == &out.body, "the body on the wire is not the message");
        for (name, value) in &out.headers {
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value.as_str()),
                "header {name} on the wire"
            );
        }
        let Got::Answer(status, answer) = got else { panic!("no answer over loopback: {got:?}") };
        let Scripted::Status(want) = input.answer else { unreachable!() };
        assert_eq!(*status, want);
        assert!(answer.len() <= MAX_ANSWER, "{} bytes of an answer read", answer.len());
        assert!(input.body.starts_with(answer) || answer.is_empty(), "the answer read is not the answer");
    }
    // What follows the answer (notifications.md, "Sending").
    let retryable = match got {
        Got::Answer(s, _) => {
            assert_eq!(attempt.status_code, Some(*s));
            matches!(s, 408 | 429 | 500..=599)
        }
        _ => {
            assert_eq!(attempt.status_code, None);
            matches!(got, Got::Retryable)
        }
    };
    let disabled = rules.disabled.lock().unwrap().clone();
    match (got, &next) {
        (Got::Answer(200..=299, _), AfterAttempt::Delivered) => {}
        (Got::Answer(410, _), AfterAttempt::DisableTarget(why)) => {
            let want = format!("{} answered 410 Gone", host(&out.url));
            assert_eq!(why, &want);
            assert_eq!(disabled, vec![(rule.id.clone(), want)], "the rule's target disabled");
        }
        (_, AfterAttempt::Retry(at)) if retryable && n < input.policy.attempts => {
            let delay = (*at - now).num_milliseconds() as f64 / 1000.0;
            let nominal = nominal_secs(input.policy, n);
            assert!(
                delay >= 0.8 * nominal - 2e-3 && delay <= 1.2 * nominal + 2e-3,
                "a delay of {delay} s after attempt {n}, nominal {nominal} s ({:?})",
                input.policy
            );
            assert!(delay <= 1.2 * input.policy.horizon.as_secs_f64() + 2e-3, "a delay beyond the horizon");
        }
        (_, AfterAttempt::Failed(why)) if retryable && n >= input.policy.attempts => {
            assert!(why.starts_with(&format!("gave up after {n} attempts: ")), "{why}");
        }
        (Got::Answer(s, _), AfterAttempt::Failed(_)) if !(200..=299).contains(s) && *s != 410 && !retryable => {}
        (Got::Refused, AfterAttempt::Failed(_)) => {}
        (got, next) => panic!("{got:?} was followed by {next:?} (attempt {n} of {})", input.policy.attempts),
    }
    if !matches!(next, AfterAttempt::DisableTarget(_)) {
        assert!(disabled.is_empty(), "a rule disabled after {next:?}");
    }
}

fuzz_target!(
    // The receiver and the transport start before the first input, outside its time limit.
    init: {
        LazyLock::force(&HTTP);
    },
    |data: &[u8]| {
    if let Some(input) = parse(data) {
        run(&input);
    }
});

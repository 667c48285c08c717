//! Sending notifications, with real parts only: the reqwest transport, the
//! SQLite outbox and rules, and receivers that verify signatures with the
//! independent `standardwebhooks` package from PyPI
//! (tests/receivers/standard_webhooks_receiver.py) — not Octoscope's signer.
//!
//! Needs `python3` with `pip install standardwebhooks` (`.ci/run` installs it).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::notify_http::{HttpNotifyTransport, HttpTransportConfig, Lookup};
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::notify::message;
use octoscope::services::notify::send::{DispatchTokens, RetryPolicy, SendReport, Sender, Sent, StaticToken};
use octoscope_testkit::receiver::Receiver;
use serde_json::{Value, json};

// ---- helpers ------------------------------------------------------------

fn transport(allow_private: bool, timeout: Duration) -> Arc<HttpNotifyTransport> {
    Arc::new(HttpNotifyTransport::new(HttpTransportConfig { allow_private, timeout, github_api: None }).unwrap())
}

fn rule(target: TargetSpec, secrets: TargetSecrets) -> Rule {
    let now = chrono::Utc::now();
    Rule {
        id: RuleId::generate(),
        event: RuleEvent::PullRequestMerged,
        filters: RuleFilters::default(),
        target,
        secrets,
        created_at: now,
        updated_at: now,
        disabled: None,
    }
}

fn webhook_rule(url: &str) -> Rule {
    rule(TargetSpec::Webhook { url: url.into() }, TargetSecrets::generate())
}

fn note_for(rule: &Rule, n: u64) -> Notification {
    let t = Transition {
        event: RuleEvent::PullRequestMerged,
        key: format!("pull_request.merged:acme/api#{n}"),
        repo: Some(RepoName::parse("acme/api").unwrap()),
        branch: Some("main".into()),
        author: Some("octocat".into()),
        environment: None,
        occurred_at: chrono::Utc::now(),
        late: false,
        data: json!({"repo": "acme/api", "number": n, "title": "Merge <it> & ship",
                     "url": format!("https://github.com/acme/api/pull/{n}")}),
    };
    Notification::decide(&rule.id, &t, chrono::Utc::now())
}

struct World {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
        Self { store, _dir: dir }
    }

    fn sender(&self, transport: Arc<HttpNotifyTransport>, policy: RetryPolicy, timeout: Duration) -> Sender {
        Sender::new(self.store.clone(), self.store.clone(), transport, Arc::new(SystemClock))
            .with_retry(policy)
            .with_timeout(timeout)
    }

    /// The rule kept, and one notification for it in the outbox.
    async fn pending(&self, rule: &Rule, n: u64) -> Notification {
        self.store.put_rule(rule).await.unwrap();
        let note = note_for(rule, n);
        assert_eq!(self.store.enqueue(std::slice::from_ref(&note)).await.unwrap(), 1);
        note
    }

    async fn note(&self, id: &NotificationId) -> Notification {
        self.store.get_notification(id).await.unwrap().unwrap()
    }
}

/// Send until nothing is pending (or `limit` passes), polling every 10 ms.
async fn send_until_settled(sender: &Sender, world: &World, id: &NotificationId, limit: Duration) -> Vec<SendReport> {
    let start = Instant::now();
    let mut reports = Vec::new();
    while start.elapsed() < limit {
        let r = sender.send_due(10).await.unwrap();
        if r.taken > 0 {
            reports.push(r);
        }
        if world.note(id).await.status != NotificationStatus::Pending {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still pending after {limit:?}: {reports:?}");
}

fn refusal(r: Result<Answer, SendError>) -> String {
    match r {
        Err(SendError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn post_to(url: &str) -> Outbound {
    Outbound { url: url.into(), headers: vec![], body: b"{}".to_vec() }
}

// ---- signatures, at an independent verifier -----------------------------

#[tokio::test]
async fn a_right_secret_verifies_at_an_independent_receiver_and_a_wrong_one_does_not() {
    let secrets = TargetSecrets::generate();
    let right = Receiver::start(secrets.current().unwrap(), &[]);
    let wrong = Receiver::start(TargetSecrets::generate().current().unwrap(), &[]);
    let t = transport(true, Duration::from_secs(5));
    let r = webhook_rule(&right.url());
    let note = note_for(&r, 42);

    let req = message::webhook(&note, &right.url(), &secrets, chrono::Utc::now()).unwrap();
    let answer = t.post(&req).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let got = right.records();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["verified"], true, "{}", got[0]);
    assert_eq!(got[0]["headers"]["webhook-id"], note.id.as_str());
    let payload = &got[0]["payload"];
    assert_eq!(payload["type"], "pull_request.merged");
    assert_eq!(payload["data"]["number"], 42);
    assert_eq!(payload["data"]["notification_id"], note.id.as_str());
    assert_eq!(payload["data"]["rule_id"], r.id.as_str());
    assert_eq!(payload["data"]["late"], false);

    let req = message::webhook(&note, &wrong.url(), &secrets, chrono::Utc::now()).unwrap();
    assert_eq!(t.post(&req).await.unwrap().status, 401);
    let got = wrong.records();
    assert_eq!(got[0]["verified"], false);
    assert!(got[0]["error"].as_str().unwrap().contains("No matching signature"), "{}", got[0]);

    // A body changed after signing fails there too.
    let mut req = message::webhook(&note, &right.url(), &secrets, chrono::Utc::now()).unwrap();
    req.body = serde_json::to_vec(&json!({"type": "pull_request.merged", "data": {"number": 43}})).unwrap();
    assert_eq!(t.post(&req).await.unwrap().status, 401);
}

#[tokio::test]
async fn during_a_rotation_both_the_old_and_the_new_secret_verify() {
    let old = TargetSecrets::generate();
    let rotated = old.rotated();
    assert_eq!(rotated.0.len(), 2);
    let with_old = Receiver::start(&rotated.0[1], &[]);
    let with_new = Receiver::start(&rotated.0[0], &[]);
    let stranger = Receiver::start(TargetSecrets::generate().current().unwrap(), &[]);
    let t = transport(true, Duration::from_secs(5));
    let note = note_for(&webhook_rule("https://unused.example/"), 7);
    for (receiver, status) in [(&with_old, 200), (&with_new, 200), (&stranger, 401)] {
        let req = message::webhook(&note, &receiver.url(), &rotated, chrono::Utc::now()).unwrap();
        let sig = &req.headers.iter().find(|(k, _)| k == "webhook-signature").unwrap().1;
        assert_eq!(sig.split(' ').filter(|s| s.starts_with("v1,")).count(), 2, "{sig}");
        assert_eq!(t.post(&req).await.unwrap().status, status);
        assert_eq!(receiver.records()[0]["verified"], status == 200);
    }
}

// ---- the sender, over the SQLite outbox ---------------------------------

#[tokio::test]
async fn a_receiver_failing_three_times_then_200_gets_it_once_after_backoff() {
    let world = World::new();
    let r = webhook_rule("http://placeholder/");
    let receiver = Receiver::start(r.secrets.current().unwrap(), &["--fail", "3"]);
    let r = Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..r };
    let note = world.pending(&r, 1).await;
    // Six attempts over 3.1 s: delays of 100, 200, 400, 800, 1600 ms, ±20 %.
    let policy = RetryPolicy::new(6, Duration::from_millis(3100));
    let sender = world.sender(transport(true, Duration::from_secs(5)), policy, Duration::from_secs(5));

    let first = sender.send_due(10).await.unwrap();
    assert_eq!((first.taken, first.retrying), (1, 1), "{first:?}");
    // Not due again at once: the backoff holds it.
    assert_eq!(sender.send_due(10).await.unwrap().taken, 0);
    let stored = world.note(&note.id).await;
    assert_eq!((stored.status, stored.attempts), (NotificationStatus::Pending, 1));
    assert_eq!(stored.last_error.as_deref().map(|e| e.contains("503")), Some(true), "{stored:?}");

    send_until_settled(&sender, &world, &note.id, Duration::from_secs(10)).await;
    let stored = world.note(&note.id).await;
    assert_eq!(stored.status, NotificationStatus::Delivered);
    assert_eq!(stored.attempts, 4);

    let got = receiver.records();
    let answered: Vec<u64> = got.iter().map(|g| g["answered"].as_u64().unwrap()).collect();
    assert_eq!(answered, [503, 503, 503, 200], "once delivered, never again");
    assert!(got.iter().all(|g| g["verified"] == true && g["headers"]["webhook-id"] == note.id.as_str()));

    let attempts = world.store.attempts(&note.id).await.unwrap();
    let codes: Vec<Option<u16>> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(503), Some(503), Some(503), Some(200)]);
    assert_eq!(attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // The log's excerpt: printable (the receiver's BEL is gone), and the gaps the backoff's.
    assert_eq!(attempts[0].excerpt, "failing on purpose (try again)");
    assert_eq!(attempts[3].excerpt, "ok thanks");
    for (i, w) in attempts.windows(2).enumerate() {
        let gap = (w[1].at - w[0].at).to_std().unwrap();
        let nominal = policy.nominal_delay(i as u32 + 1);
        assert!(gap >= nominal.mul_f64(0.8), "gap {i}: {gap:?} < 0.8 × {nominal:?}");
        assert!(gap < nominal.mul_f64(1.2) + Duration::from_millis(400), "gap {i}: {gap:?} vs {nominal:?}");
    }
    // A later turn sends nothing more.
    assert_eq!(sender.send_due(10).await.unwrap().taken, 0);
    assert_eq!(receiver.records().len(), 4);
}

#[tokio::test]
async fn a_410_disables_the_rule_with_the_reason_and_its_later_notifications_are_not_sent() {
    let world = World::new();
    let r = webhook_rule("http://placeholder/");
    let receiver = Receiver::start(r.secrets.current().unwrap(), &["--status", "410"]);
    let r = Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..r };
    let note = world.pending(&r, 1).await;
    let sender = world.sender(transport(true, Duration::from_secs(5)), RetryPolicy::default(), Duration::from_secs(5));

    let report = sender.send_due(10).await.unwrap();
    assert_eq!((report.taken, report.disabled), (1, 1), "{report:?}");
    let reason = format!("127.0.0.1:{} answered 410 Gone", receiver.port);
    assert_eq!(world.store.get_rule(&r.id).await.unwrap().unwrap().disabled.as_deref(), Some(reason.as_str()));
    let stored = world.note(&note.id).await;
    assert_eq!(stored.status, NotificationStatus::Failed);
    assert_eq!(stored.last_error.as_deref(), Some(reason.as_str()));
    assert!(world.store.rules_for(RuleEvent::PullRequestMerged).await.unwrap().is_empty());

    // One decided before the rule was disabled is failed without being sent.
    let later = note_for(&r, 2);
    world.store.enqueue(std::slice::from_ref(&later)).await.unwrap();
    match sender.send_one(&later).await.unwrap() {
        Sent::Attempted { attempt, next } => {
            assert_eq!(next, AfterAttempt::Failed(format!("target disabled: {reason}")));
            assert_eq!(attempt.status_code, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(receiver.records().len(), 1);
    // And a queue's redelivery of a settled notification sends nothing.
    assert_eq!(sender.send_one(&later).await.unwrap(), Sent::Skipped(NotificationStatus::Failed));
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let world = World::new();
    let r = webhook_rule("http://placeholder/");
    // The first request waits 3 s; the sender gives up after 1 s.
    let receiver = Receiver::start(r.secrets.current().unwrap(), &["--sleep", "3", "--sleep-count", "1"]);
    let r = Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..r };
    let note = world.pending(&r, 1).await;
    let timeout = Duration::from_secs(1);
    let sender = world.sender(transport(true, timeout), RetryPolicy::new(3, Duration::from_millis(300)), timeout);

    let first = sender.send_due(10).await.unwrap();
    assert_eq!(first.retrying, 1, "{first:?}");
    send_until_settled(&sender, &world, &note.id, Duration::from_secs(10)).await;
    assert_eq!(world.note(&note.id).await.status, NotificationStatus::Delivered);
    let attempts = world.store.attempts(&note.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status_code, None);
    assert_eq!(attempts[0].excerpt, "timed out after 1s");
    assert!((1000..2500).contains(&attempts[0].latency_ms), "{:?}", attempts[0]);
    assert_eq!(attempts[1].status_code, Some(200));
    assert!(attempts[1].latency_ms < 1000);
}

#[tokio::test]
async fn attempts_run_out_on_5xx_and_other_4xx_fail_at_once() {
    let world = World::new();
    let r = webhook_rule("http://placeholder/");
    let always_500 = Receiver::start(r.secrets.current().unwrap(), &["--status", "500"]);
    let r = Rule { target: TargetSpec::Webhook { url: always_500.url() }, ..r };
    let note = world.pending(&r, 1).await;
    let sender = world.sender(
        transport(true, Duration::from_secs(5)),
        RetryPolicy::new(3, Duration::from_millis(150)),
        Duration::from_secs(5),
    );
    send_until_settled(&sender, &world, &note.id, Duration::from_secs(10)).await;
    let stored = world.note(&note.id).await;
    assert_eq!(stored.status, NotificationStatus::Failed);
    assert_eq!(stored.attempts, 3);
    assert_eq!(stored.last_error.as_deref(), Some("gave up after 3 attempts: HTTP 500"));
    assert_eq!(always_500.records().len(), 3);

    let r2 = webhook_rule("http://placeholder/");
    let always_400 = Receiver::start(r2.secrets.current().unwrap(), &["--status", "400"]);
    let r2 = Rule { target: TargetSpec::Webhook { url: always_400.url() }, ..r2 };
    let note2 = world.pending(&r2, 2).await;
    let report = sender.send_due(10).await.unwrap();
    assert_eq!((report.taken, report.failed), (1, 1), "{report:?}");
    assert_eq!(world.note(&note2.id).await.last_error.as_deref(), Some("HTTP 400"));
    assert_eq!(always_400.records().len(), 1);
}

#[tokio::test]
async fn a_deleted_rule_fails_its_notification_without_sending() {
    let world = World::new();
    let r = webhook_rule("http://placeholder/");
    let receiver = Receiver::start(r.secrets.current().unwrap(), &[]);
    let r = Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..r };
    let note = world.pending(&r, 1).await;
    assert!(world.store.delete_rule(&r.id).await.unwrap());
    let sender = world.sender(transport(true, Duration::from_secs(5)), RetryPolicy::default(), Duration::from_secs(5));
    let report = sender.send_due(10).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(world.note(&note.id).await.last_error.as_deref(), Some("rule deleted"));
    assert!(receiver.records().is_empty());
}

#[tokio::test]
async fn a_refused_address_fails_the_notification_with_the_reason() {
    let world = World::new();
    let r = webhook_rule("https://169.254.169.254/latest/meta-data/");
    let note = world.pending(&r, 1).await;
    let sender = world.sender(transport(true, Duration::from_secs(5)), RetryPolicy::default(), Duration::from_secs(5));
    assert_eq!(sender.send_due(10).await.unwrap().failed, 1);
    let stored = world.note(&note.id).await;
    assert_eq!(stored.attempts, 1);
    let why = stored.last_error.unwrap();
    assert!(why.contains("169.254.169.254") && why.contains("metadata") && why.contains("never allowed"), "{why}");
}

// ---- where the transport may connect ------------------------------------

#[tokio::test]
async fn refusals_are_clear_and_private_targets_are_admitted_only_when_allowed() {
    let receiver = Receiver::start(TargetSecrets::generate().current().unwrap(), &[]);
    let port = receiver.port;
    let strict = transport(false, Duration::from_secs(2));
    let lenient = transport(true, Duration::from_secs(2));

    for (url, words) in [
        ("http://example.com/hook".to_owned(), vec!["plain http://", "OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1"]),
        ("https://127.0.0.1/".to_owned(), vec!["127.0.0.1 is loopback", "OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1"]),
        ("https://[::1]/".to_owned(), vec!["::1 is loopback"]),
        ("https://10.0.0.1/".to_owned(), vec!["10.0.0.1 is private"]),
        ("https://169.254.169.254/".to_owned(), vec!["169.254.169.254 is the cloud metadata address", "never allowed"]),
        // No literal address: the resolver finds loopback.
        ("https://localhost/".to_owned(), vec!["localhost resolves to ", ", which is loopback"]),
        (format!("https://localhost:{port}/hook"), vec!["localhost resolves to ", ", which is loopback"]),
    ] {
        let why = refusal(strict.post(&post_to(&url)).await);
        for w in words {
            assert!(why.contains(w), "{url}: {why:?} should say {w:?}");
        }
        assert!(!why.contains("/hook"), "a refusal names the host, not the path: {why}");
    }

    // Allowed: loopback, by address or by a name, reaches the receiver
    // (unsigned, so it answers 401 — an answer, not a refusal).
    for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
        assert_eq!(lenient.post(&post_to(&url)).await.unwrap().status, 401, "{url}");
    }
    // The others are admitted too: whatever happens next is not a refusal.
    for url in ["https://[::1]:9/", "https://10.0.0.1/", "http://example.com/", "https://localhost:9/"] {
        if let Err(SendError::Refused(why)) = lenient.post(&post_to(url)).await {
            panic!("{url} refused with private targets allowed: {why}");
        }
    }
    // Link-local and metadata never.
    for url in ["https://169.254.169.254/", "http://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/"] {
        assert!(refusal(lenient.post(&post_to(url)).await).contains("never allowed"), "{url}");
    }
}

/// Answers host names from a table, counting lookups.
struct Table(Vec<(&'static str, Vec<IpAddr>)>, AtomicUsize);

#[async_trait]
impl Lookup for Table {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, ips)| ips.clone())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

#[tokio::test]
async fn the_address_connected_is_the_one_the_resolver_checked() {
    let receiver = Receiver::start(TargetSecrets::generate().current().unwrap(), &[]);
    let port = receiver.port;
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let public: IpAddr = "93.184.216.34".parse().unwrap();
    let table =
        || Arc::new(Table(vec![("receiver.test", vec![lo]), ("mixed.test", vec![public, lo])], AtomicUsize::new(0)));
    let config =
        |allow_private| HttpTransportConfig { allow_private, timeout: Duration::from_secs(2), github_api: None };

    // `receiver.test` exists in no DNS: reaching the receiver through it
    // shows the connection went to the address the resolver returned.
    let names = table();
    let lenient = HttpNotifyTransport::with_lookup(config(true), names.clone()).unwrap();
    let answer = lenient.post(&post_to(&format!("http://receiver.test:{port}/hook"))).await.unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(receiver.records().len(), 1);
    assert!(names.1.load(Ordering::SeqCst) >= 1);

    // The same answer refused when private targets are not allowed, at send time…
    let strict = HttpNotifyTransport::with_lookup(config(false), table()).unwrap();
    let why = refusal(strict.post(&post_to(&format!("https://receiver.test:{port}/hook"))).await);
    assert_eq!(
        why,
        "receiver.test resolves to 127.0.0.1, which is loopback (127.0.0.0/8); private, loopback and http:// targets need OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1"
    );
    // …and a name with one bad address among good ones is refused whole.
    let why = refusal(strict.post(&post_to("https://mixed.test/")).await);
    assert!(why.starts_with("mixed.test resolves to 127.0.0.1"), "{why}");
    assert_eq!(receiver.records().len(), 1, "nothing sent to a refused name");
}

// ---- redirects, body size, repository_dispatch (a local axum server) ----

#[derive(Default)]
struct Seen {
    hits: Mutex<Vec<(String, Option<String>, Value)>>,
}

async fn local_server(seen: Arc<Seen>) -> u16 {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri, header};
    use axum::routing::post;
    async fn record(State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap, body: String) -> (StatusCode, String) {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        seen.hits.lock().unwrap().push((
            uri.path().to_owned(),
            auth,
            serde_json::from_str(&body).unwrap_or(Value::Null),
        ));
        (StatusCode::NO_CONTENT, String::new())
    }
    let app = axum::Router::new()
        .route("/redirect", post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")], "moved") }))
        .route("/big", post(|| async { "x".repeat(1 << 20) }))
        .route("/elsewhere", post(record))
        .route("/api/v3/repos/{owner}/{repo}/dispatches", post(record))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn a_redirect_is_an_answer_and_a_body_is_read_to_4_kb() {
    let seen = Arc::new(Seen::default());
    let port = local_server(seen.clone()).await;
    let t = transport(true, Duration::from_secs(5));
    let a = t.post(&post_to(&format!("http://127.0.0.1:{port}/redirect"))).await.unwrap();
    assert_eq!(a.status, 302);
    assert!(seen.hits.lock().unwrap().is_empty(), "the redirect was not followed");
    let a = t.post(&post_to(&format!("http://127.0.0.1:{port}/big"))).await.unwrap();
    assert_eq!((a.status, a.body.len()), (200, 4096));

    // The sender: a redirect fails the notification (retrying cannot change it).
    let world = World::new();
    let r = webhook_rule(&format!("http://127.0.0.1:{port}/redirect"));
    let note = world.pending(&r, 1).await;
    let sender = world.sender(t, RetryPolicy::default(), Duration::from_secs(5));
    assert_eq!(sender.send_due(10).await.unwrap().failed, 1);
    assert_eq!(world.note(&note.id).await.last_error.as_deref(), Some("HTTP 302 (redirects are not followed)"));
}

#[tokio::test]
async fn repository_dispatch_goes_to_the_configured_github_api_with_the_token() {
    let seen = Arc::new(Seen::default());
    let port = local_server(seen.clone()).await;
    let api = format!("http://127.0.0.1:{port}/api/v3");
    // Private targets NOT allowed: the configured GitHub API base is the one exemption.
    let t = Arc::new(
        HttpNotifyTransport::new(HttpTransportConfig {
            allow_private: false,
            timeout: Duration::from_secs(5),
            github_api: Some(api.clone()),
        })
        .unwrap(),
    );
    let world = World::new();
    let r = rule(
        TargetSpec::RepositoryDispatch {
            repo: RepoName::parse("acme/deploy").unwrap(),
            event_type: Some("merged".into()),
        },
        TargetSecrets::default(),
    );
    let note = world.pending(&r, 5).await;
    let sender = world
        .sender(t.clone(), RetryPolicy::default(), Duration::from_secs(5))
        .with_github(api.clone(), Arc::new(StaticToken("ghs_test_token".into())));
    let report = sender.send_due(10).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}: {:?}", world.note(&note.id).await);
    let hits = seen.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    let (path, auth, body) = &hits[0];
    assert_eq!(path, "/api/v3/repos/acme/deploy/dispatches");
    assert_eq!(auth.as_deref(), Some("Bearer ghs_test_token"));
    assert_eq!(body["event_type"], "merged");
    let payload = body["client_payload"].as_object().unwrap();
    assert!(payload.len() <= 10, "{payload:?}");
    assert_eq!(payload["notification_id"], note.id.as_str());
    assert_eq!(payload["data"]["number"], 5);
    // The token is nowhere in the log.
    let attempts = world.store.attempts(&note.id).await.unwrap();
    assert!(!format!("{attempts:?}").contains("ghs_test_token"));

    // The exemption is the API base only: the same server on another path is refused.
    let why = refusal(t.post(&post_to(&format!("http://127.0.0.1:{port}/elsewhere"))).await);
    assert!(why.contains("plain http://"), "{why}");

    // Credentials that cannot be had just now: tried again later, saying why.
    struct NoToken;
    #[async_trait]
    impl DispatchTokens for NoToken {
        async fn token(&self, repo: &RepoName) -> anyhow::Result<String> {
            anyhow::bail!("no installation on {}", repo.owner())
        }
    }
    let world = World::new();
    let note = world.pending(&r, 7).await;
    let sender = world
        .sender(t.clone(), RetryPolicy::default(), Duration::from_secs(5))
        .with_github(api.clone(), Arc::new(NoToken));
    assert_eq!(sender.send_due(10).await.unwrap().retrying, 1);
    let attempts = world.store.attempts(&note.id).await.unwrap();
    assert_eq!(attempts[0].excerpt, "no GitHub token for acme/deploy: no installation on acme");

    // Without credentials a dispatch target fails, saying why.
    let world = World::new();
    let note = world.pending(&r, 6).await;
    let sender = world.sender(t, RetryPolicy::default(), Duration::from_secs(5));
    assert_eq!(sender.send_due(10).await.unwrap().failed, 1);
    assert!(world.note(&note.id).await.last_error.unwrap().contains("needs GitHub credentials"));
}

#[tokio::test]
async fn slack_gets_block_kit_with_links_back() {
    let seen = Arc::new(Seen::default());
    let port = local_server(seen.clone()).await;
    let world = World::new();
    let r = rule(TargetSpec::Slack { url: format!("http://127.0.0.1:{port}/elsewhere") }, TargetSecrets::default());
    let note = world.pending(&r, 9).await;
    let sender = world
        .sender(transport(true, Duration::from_secs(5)), RetryPolicy::default(), Duration::from_secs(5))
        .with_dashboard(Some("https://octoscope.example".into()));
    assert_eq!(sender.send_due(10).await.unwrap().delivered, 1);
    let hits = seen.hits.lock().unwrap().clone();
    let body = &hits[0].2;
    assert_eq!(body["text"], "Pull request #9 merged in acme/api: Merge &lt;it&gt; &amp; ship");
    let blocks = body["blocks"].to_string();
    assert!(blocks.contains("<https://github.com/acme/api/pull/9|acme/api#9>"), "{blocks}");
    assert!(
        blocks.contains(&format!("<https://octoscope.example/#/notifications?rule={}|Octoscope>", r.id)),
        "{blocks}"
    );
    assert_eq!(world.note(&note.id).await.status, NotificationStatus::Delivered);
}

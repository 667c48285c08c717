//! Notifications end to end with the real `octoscope` binary: rules made
//! through the API, deliveries through `/webhook`, the notification sent by
//! `serve` to a receiver that verifies it with the independent
//! `standardwebhooks` package; kept across a SIGKILL; and a push whose
//! webhook was lost still announced, `late`, after `octoscope check`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use octoscope_fakehub::{Commit, FakeHub, OrgSpec, WebhookSpec};
use octoscope_testkit::receiver::Receiver;
use octoscope_testkit::{Server, deliver};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "fakehub-webhook-secret";

fn serve(dir: &Path) -> Server {
    let env = [
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "1"),
        // Six attempts over a minute: the first retry ≈ 2 s after the first attempt.
        ("OCTOSCOPE_NOTIFY_HORIZON_SECONDS", "60"),
    ];
    Server::start_with_args(Path::new(BIN), dir, &env, &["--check-interval", "0"]).unwrap()
}

async fn api(client: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A rule whose webhook target is `url`: its id and its secret.
async fn add_rule(client: &reqwest::Client, base: &str, mut rule: Value, url: &str) -> (String, String) {
    rule["target"] = json!({ "type": "webhook", "url": url });
    let (status, body) = api(client, reqwest::Method::POST, format!("{base}/api/rules"), Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

/// Point rule `id` (whose fields are `rule`) at `url`; its secret stays.
async fn retarget(client: &reqwest::Client, base: &str, id: &str, mut rule: Value, url: &str) {
    rule["target"] = json!({ "type": "webhook", "url": url });
    let (status, body) = api(client, reqwest::Method::PUT, format!("{base}/api/rules/{id}"), Some(rule)).await;
    assert_eq!(status, 200, "{body}");
}

async fn notifications(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let (status, body) = api(client, reqwest::Method::GET, format!("{base}/api/notifications"), None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Poll until `done` holds of the notifications (or fail after `within`).
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let notes = notifications(client, base).await;
        if done(&notes) {
            return notes;
        }
        assert!(start.elapsed() < within, "not reached within {within:?}: {notes:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn merged_pull(number: u64) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/tests/fixtures/github-webhooks/api.github.com/pull_request/closed.payload.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut p: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["merged"] = json!(true);
    p["pull_request"]["merged_at"] = json!("2019-05-15T15:20:33Z");
    serde_json::to_vec(&p).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_pending_when_serve_is_killed_is_sent_after_restart_once() {
    // GIVEN serve with a merge rule whose target is down (nothing listens on port 9)
    let dir = tempfile::tempdir().unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let server = serve(dir.path());
    let rule = json!({ "on": "pull_request.merged", "repo": "Codertocat/Hello-World" });
    let (id, secret) = add_rule(&client, &server.base, rule.clone(), "http://127.0.0.1:9/hook").await;

    // WHEN a merge arrives (twice), and the first attempt fails
    for _ in 0..2 {
        let (status, body) =
            deliver(&client, &server.base, SECRET, "pull_request", merged_pull(7), "merge-7").await.unwrap();
        assert!(status == 200 || status == 202, "{status} {body}");
    }
    let notes = wait_for(&client, &server.base, Duration::from_secs(20), |n| {
        n.len() == 1 && n[0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(notes[0]["status"], "pending", "{notes:#?}");
    let note_id = notes[0]["id"].as_str().unwrap().to_owned();

    // AND serve is killed (SIGKILL) with the notification pending
    drop(server);

    // THEN after a restart, with the target up, it is sent once, and verifies at an independent receiver
    let receiver = Receiver::start(&secret, &[]);
    let server = serve(dir.path());
    retarget(&client, &server.base, &id, rule, &receiver.url()).await;
    let notes = wait_for(&client, &server.base, Duration::from_secs(60), |n| n[0]["status"] == "delivered").await;
    assert_eq!(notes.len(), 1);
    let got = receiver.records();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], true, "{got:#?}");
    assert_eq!(got[0]["headers"]["webhook-id"], note_id);
    assert_eq!(got[0]["payload"]["type"], "pull_request.merged");
    assert_eq!(got[0]["payload"]["data"]["number"], 7);
    // AND its attempts are logged: the failure before the kill, the delivery after
    let (_, one) =
        api(&client, reqwest::Method::GET, format!("{}/api/notifications/{note_id}", server.base), None).await;
    let attempts = one["attempt_log"].as_array().unwrap_or_else(|| panic!("{one}"));
    assert!(attempts.len() >= 2, "{one}");
    assert_eq!(attempts.last().unwrap()["status_code"], 200, "{one}");
    assert!(attempts[0]["status_code"].is_null(), "no answer from port 9: {one}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_whose_webhook_was_lost_is_announced_late_after_check() {
    // GIVEN a fake GitHub whose history reached serve whole
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 5, teams: 0, members: 3, runs: 0, ..OrgSpec::default() })
        .await
        .unwrap();
    let (repo, branch, old_head) = {
        let org = hub.org();
        let r = &org.repos[0];
        (format!("{}/{}", r.owner, r.name), r.default_branch.clone(), r.branches[0].head_sha.clone())
    };
    let dir = tempfile::tempdir().unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let server = serve(dir.path());
    let spec = WebhookSpec { secret: SECRET.into(), concurrency: 4, ..WebhookSpec::default() };
    hub.send_webhooks(&format!("{}/webhook", server.base), &spec).await.unwrap();
    // AND a rule on its default branch, with a receiver
    let rule = json!({ "on": "branch.moved", "repo": repo, "branch": branch });
    let (id, secret) = add_rule(&client, &server.base, rule.clone(), "http://127.0.0.1:9/hook").await;
    let receiver = Receiver::start(&secret, &[]);
    retarget(&client, &server.base, &id, rule, &receiver.url()).await;

    // WHEN a push lands on GitHub and its webhook never arrives
    let new_head = "feedface".repeat(5);
    let now = chrono::Utc::now();
    hub.update(|org| {
        let r = &mut org.repos[0];
        r.commits.push(Commit {
            sha: new_head.clone(),
            message: "Hotfix pushed while webhooks were down".into(),
            author_name: "Developer".into(),
            author_login: None,
            committed_at: now,
        });
        r.branches[0].head_sha = new_head.clone();
        r.branches[0].pushed_at = now;
        r.pushed_at = now;
    });
    assert!(notifications(&client, &server.base).await.is_empty());

    // AND `octoscope check` runs (beside serve, on its data directory)
    let out = Command::new(BIN)
        .args(["check", "--data-dir"])
        .arg(dir.path())
        .env("GITHUB_API_URL", &hub.url)
        .env("GITHUB_TOKEN", hub.token())
        .env("OCTOSCOPE_ORGS", &hub.org().login)
        .env_remove("GITHUB_APP_ID")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 notification decided"), "{said}");

    // THEN serve sends the branch's move, marked late, from the head it had to the new one
    let notes =
        wait_for(&client, &server.base, Duration::from_secs(30), |n| n.iter().any(|x| x["status"] == "delivered"))
            .await;
    assert_eq!(notes.len(), 1, "{notes:#?}\n{said}");
    assert_eq!(notes[0]["late"], true);
    let got = receiver.records();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], true);
    let data = &got[0]["payload"]["data"];
    assert_eq!(got[0]["payload"]["type"], "branch.moved");
    assert_eq!(data["late"], true);
    assert_eq!(data["after"], new_head);
    assert_eq!(data["before"], old_head);
    assert_eq!(data["branch"], branch);

    // AND a second check finds nothing and sends nothing more
    let again = Command::new(BIN)
        .args(["check", "--data-dir"])
        .arg(dir.path())
        .env("GITHUB_API_URL", &hub.url)
        .env("GITHUB_TOKEN", hub.token())
        .env("OCTOSCOPE_ORGS", &hub.org().login)
        .env_remove("GITHUB_APP_ID")
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("decided"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(notifications(&client, &server.base).await.len(), 1);
    assert_eq!(receiver.records().len(), 1);
}

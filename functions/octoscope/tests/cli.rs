//! The real `octoscope` binary: serve on a free loopback port, config refusal,
//! help on every command, and replay after a hard kill.

use std::path::Path;
use std::process::Command;

use octoscope_testkit::{Server, all_fixtures, deliver};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "cli-test-secret";

async fn all(client: &reqwest::Client, base: &str, path: &str) -> Vec<Value> {
    octoscope_testkit::all_items(client, base, path).await
}

#[tokio::test]
async fn serve_accepts_every_example_and_replay_rebuilds_after_a_hard_kill() {
    // GIVEN `octoscope serve` on a free port
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    assert!(server.banner.contains("/webhook"), "tells where to point GitHub: {}", server.banner);
    let client = octoscope_testkit::http().build().unwrap();
    // WHEN every example payload is delivered over HTTP
    for (event, name, body) in all_fixtures() {
        let (status, text) =
            deliver(&client, &server.base, SECRET, &event, body, &uuid::Uuid::new_v4().to_string()).await.unwrap();
        // THEN none gets anything but a 2xx
        assert!((200..300).contains(&status), "{event}/{name}: {status} {text}");
    }
    let repos = all(&client, &server.base, "/api/repos").await;
    assert!(repos.iter().any(|r| r["full_name"] == "Codertocat/Hello-World"));
    let pulls_before = all(&client, &server.base, "/api/pulls?repo=Codertocat/Hello-World&state=all").await;
    assert!(!pulls_before.is_empty());
    let repos_before = repos;

    // WHEN the server is killed (no graceful shutdown) and the store is replayed
    drop(server);
    let out = Command::new(BIN).args(["replay", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{} deliveries", all_fixtures().len())), "{said}");

    // THEN a restarted server says exactly what it said before
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    assert_eq!(all(&client, &server.base, "/api/repos").await, repos_before);
    assert_eq!(all(&client, &server.base, "/api/pulls?repo=Codertocat/Hello-World&state=all").await, pulls_before);
}

#[test]
fn a_public_address_without_api_tokens_is_refused_at_start() {
    // GIVEN no OCTOSCOPE_API_TOKENS WHEN asked to listen on 0.0.0.0 THEN it refuses, naming the variable
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env_remove("OCTOSCOPE_API_TOKENS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OCTOSCOPE_API_TOKENS"), "{err}");
    // AND a bad value is refused the same way
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("OCTOSCOPE_MAX_BODY_BYTES", "a lot")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OCTOSCOPE_MAX_BODY_BYTES"));
}

#[tokio::test]
async fn tokens_protect_the_api_of_a_public_server() {
    let dir = tempfile::tempdir().unwrap();
    let token = "a-long-enough-api-token";
    let server = Server::start(
        Path::new(BIN),
        dir.path(),
        &[("GITHUB_WEBHOOK_SECRET", SECRET), ("OCTOSCOPE_API_TOKENS", token)],
    )
    .unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let url = format!("{}/api/health", server.base);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), 200);
}

#[test]
fn without_a_secret_one_is_made_in_the_data_dir_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(BIN), dir.path(), &[]).unwrap();
    let secret = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
    assert!(secret.trim().len() >= 32);
    assert!(server.banner.contains("webhook-secret"), "says where the secret is: {}", server.banner);
    assert!(!server.banner.contains(secret.trim()), "the secret itself is never printed");
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["serve", "--help"], &["replay", "--help"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let serve =
        String::from_utf8_lossy(&Command::new(BIN).args(["serve", "--help"]).output().unwrap().stdout).into_owned();
    for flag in ["--listen", "--data-dir", "GITHUB_WEBHOOK_SECRET", "OCTOSCOPE_API_TOKENS"] {
        assert!(serve.contains(flag), "serve --help mentions {flag}");
    }
}

#[tokio::test]
async fn demo_loads_a_sample_org_through_the_webhook_path_once() {
    // GIVEN an empty data directory; serve says how to get a sample
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    assert!(server.banner.contains("octoscope demo"), "an empty store offers the sample: {}", server.banner);
    drop(server);
    // WHEN the demo is loaded, twice
    let run = || {
        let out = Command::new(BIN).args(["demo", "--data-dir"]).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    let second = run();
    // THEN the first stores every delivery and the second nothing
    assert!(first.contains(" 0 already there"), "{first}");
    assert!(second.contains(": 0 stored"), "{second}");
    // AND every part of the dashboard has data: pull request flow, CI, DORA, teams, deliveries
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let get = |path: &str| {
        let (client, url) = (client.clone(), format!("{}{path}", server.base));
        async move { client.get(&url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let pulls = get("/api/metrics/pulls").await;
    assert!(pulls["groups"][0]["merged"].as_u64().unwrap() > 100, "{pulls}");
    assert!(pulls["groups"][0]["time_to_first_review_seconds"]["p50"].as_i64().unwrap() > 0);
    let ci = get("/api/metrics/ci?group_by=os").await;
    let os: Vec<&str> = ci["groups"].as_array().unwrap().iter().filter_map(|g| g["key"].as_str()).collect();
    assert!(os.contains(&"linux") && os.contains(&"macos"), "{ci}");
    let dora = get("/api/metrics/dora").await;
    assert!(
        dora["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["environment"] == "production" && g["successful"].as_u64().unwrap() > 10),
        "{dora}"
    );
    assert_eq!(all(&client, &server.base, "/api/teams").await.len(), 3);
    assert!(get("/api/health").await["stats"]["deliveries"].get("failed").is_none(), "every demo delivery normalises");
}

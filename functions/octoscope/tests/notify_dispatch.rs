//! `repository_dispatch` targets when `serve` runs as a GitHub App installed
//! on two accounts: each dispatch is authorised by the installation token of
//! the target repository's owner, narrowed to that repository and the
//! Contents write permission (minted once per repository, then reused
//! until shortly before it expires), and the fake GitHub records it with its
//! `event_type` and `client_payload`. An owner without an installation is
//! an attempt that failed saying so, and nothing is dispatched.

use std::path::Path;
use std::time::{Duration, Instant};

use octoscope_fakehub::{AppSpec, FakeHub, HubConfig, InstallationSpec, OrgSpec, TEST_APP_PRIVATE_KEY};
use octoscope_testkit::{Server, deliver};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "fakehub-webhook-secret";
const OTHER: &str = "other-org";
const OTHER_INSTALLATION: u64 = 77_002;

async fn api(client: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A rule dispatching to `repo`: its id.
async fn add_rule(client: &reqwest::Client, base: &str, on: &str, repo: &str, event_type: &str) -> String {
    let rule = json!({ "on": on, "target": { "type": "repository_dispatch", "repo": repo, "event_type": event_type } });
    let (status, body) = api(client, reqwest::Method::POST, format!("{base}/api/rules"), Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["secret"].is_null(), "a dispatch target has no signing secret: {body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Send rule `id` a test notification: its id.
async fn test_rule(client: &reqwest::Client, base: &str, id: &str) -> String {
    let (status, body) = api(client, reqwest::Method::POST, format!("{base}/api/rules/{id}/test"), None).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Poll notification `id` until `done` holds of it (with its attempts).
async fn wait_for(client: &reqwest::Client, base: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, one) = api(client, reqwest::Method::GET, format!("{base}/api/notifications/{id}"), None).await;
        if status == 200 && done(&one) {
            return one;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not reached within 30 s: {one:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn delivered(one: &Value) -> bool {
    assert_ne!(one["status"], "failed", "{one:#}");
    one["status"] == "delivered"
}

fn merged_pull(owner: &str, name: &str, number: u64) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/tests/fixtures/github-webhooks/api.github.com/pull_request/closed.payload.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut p: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["merged"] = json!(true);
    p["pull_request"]["merged_at"] = json!("2019-05-15T15:20:33Z");
    p["repository"]["name"] = json!(name);
    p["repository"]["full_name"] = json!(format!("{owner}/{name}"));
    p["repository"]["owner"]["login"] = json!(owner);
    serde_json::to_vec(&p).unwrap()
}

/// The id of the fake's repository `full_name` (its name now).
fn repo_id(hub: &FakeHub, full_name: &str) -> i64 {
    hub.org().repos.iter().find(|r| r.full_name() == full_name).unwrap_or_else(|| panic!("no {full_name}")).id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_as_the_app_uses_the_installation_on_the_repository_s_owner() {
    // GIVEN a GitHub App installed on the organisation and on another account, which owns repo-1
    let app = AppSpec {
        more_installations: vec![InstallationSpec { id: OTHER_INSTALLATION, account: OTHER.into() }],
        ..AppSpec::default()
    };
    let spec = OrgSpec { repos: 2, pulls: 2, teams: 0, members: 2, runs: 0, deployments: 0, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let org = hub.org().login.clone();
    let org_installation = hub.app().installation_id;
    hub.transfer_repo(&format!("{org}/repo-1"), OTHER).unwrap();

    // AND serve as that app (no installation id: every installation), without a scheduled check
    let dir = tempfile::tempdir().unwrap();
    let app_id = hub.app().app_id.to_string();
    let env = [
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("GITHUB_API_URL", hub.url.as_str()),
        ("GITHUB_APP_ID", app_id.as_str()),
        ("GITHUB_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY),
        ("OCTOSCOPE_NOTIFY_HORIZON_SECONDS", "60"),
    ];
    let server = Server::start_with_args(Path::new(BIN), dir.path(), &env, &["--check-interval", "0"]).unwrap();
    let base = server.base.clone();
    let client = octoscope_testkit::http().build().unwrap();
    assert_eq!(hub.installation_tokens_minted(), 0, "nothing is asked of GitHub before a dispatch needs it");

    // WHEN a rule dispatches merges of the other account's repository to it, and one is merged
    let other_repo = format!("{OTHER}/repo-1");
    let merges = add_rule(&client, &base, "pull_request.merged", &other_repo, "octoscope-merged").await;
    let (status, body) =
        deliver(&client, &base, SECRET, "pull_request", merged_pull(OTHER, "repo-1", 7), "merge-7").await.unwrap();
    assert!(status == 200 || status == 202, "{status} {body}");
    let (_, listed) = api(&client, reqwest::Method::GET, format!("{base}/api/notifications?rule={merges}"), None).await;
    let items = listed["items"].as_array().unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(items.len(), 1, "{listed:#}");
    let merged_id = items[0]["id"].as_str().unwrap().to_owned();
    let one = wait_for(&client, &base, &merged_id, delivered).await;

    // THEN the fake recorded exactly one dispatch, to that repository, with the event and its fields
    let dispatches = hub.dispatches();
    assert_eq!(dispatches.len(), 1, "{dispatches:#?}");
    let d = &dispatches[0];
    assert_eq!(d.repo, other_repo);
    assert_eq!(d.event_type, "octoscope-merged");
    assert_eq!(d.client_payload["event"], "pull_request.merged", "{:#}", d.client_payload);
    assert_eq!(d.client_payload["notification_id"], merged_id.as_str());
    assert_eq!(d.client_payload["rule_id"], merges.as_str());
    assert_eq!(d.client_payload["data"]["number"], 7, "{:#}", d.client_payload);
    // AND authorised by the installation token of the repository's owner
    assert_eq!(d.installation, Some(OTHER_INSTALLATION), "{d:?}");
    assert_eq!(hub.installation_of(&d.token), Some(OTHER_INSTALLATION));
    assert!(d.token.starts_with("ghs_"), "an installation token, not the app's JWT");
    // AND narrowed to that repository and the one permission a dispatch needs
    let minted = hub.minted(&d.token).unwrap();
    assert_eq!(minted.repositories, Some(vec![repo_id(&hub, &other_repo)]), "{minted:?}");
    assert_eq!(minted.permissions, [("contents".to_owned(), "write".to_owned())].into(), "{minted:?}");
    // AND the attempt is logged as GitHub's 204
    let attempts = one["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{one:#}");
    assert_eq!(attempts[0]["status_code"], 204, "{one:#}");

    // WHEN the organisation's repository gets a dispatch too, and the other account's another
    let org_repo = format!("{org}/repo-0");
    let tests = add_rule(&client, &base, "pull_request.opened", &org_repo, "octoscope-test").await;
    let test_id = test_rule(&client, &base, &tests).await;
    wait_for(&client, &base, &test_id, delivered).await;
    let second = test_rule(&client, &base, &merges).await;
    wait_for(&client, &base, &second, delivered).await;

    // THEN each went through its owner's installation, and each installation's token was minted once
    let dispatches = hub.dispatches();
    assert_eq!(dispatches.len(), 3, "{dispatches:#?}");
    let to_org = &dispatches[1];
    assert_eq!((to_org.repo.as_str(), to_org.event_type.as_str()), (org_repo.as_str(), "octoscope-test"));
    assert_eq!(to_org.client_payload["event"], "test", "{:#}", to_org.client_payload);
    assert_eq!(to_org.installation, Some(org_installation), "{to_org:?}");
    assert_eq!(dispatches[2].repo, other_repo);
    assert_eq!(dispatches[2].installation, Some(OTHER_INSTALLATION));
    assert_eq!(dispatches[2].token, dispatches[0].token, "the cached token is reused");
    assert_eq!(hub.installation_tokens_minted(), 2, "one token per repository");
    assert_eq!(hub.minted(&to_org.token).unwrap().repositories, Some(vec![repo_id(&hub, &org_repo)]));
    assert_eq!(hub.foreign_reads(), vec![], "no installation's token was used on another's repository");

    // WHEN a rule dispatches to a repository whose owner has no installation of the app
    let nowhere = add_rule(&client, &base, "pull_request.opened", "no-such-owner/repo", "octoscope-test").await;
    let note = test_rule(&client, &base, &nowhere).await;
    let one = wait_for(&client, &base, &note, |n| n["attempt_log"].as_array().is_some_and(|a| !a.is_empty())).await;

    // THEN its attempt says so, with no answer from GitHub, and nothing was dispatched
    let attempt = &one["attempt_log"][0];
    assert!(attempt["status_code"].is_null(), "{one:#}");
    let excerpt = attempt["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("not installed on no-such-owner"), "{one:#}");
    assert!(!excerpt.contains("ghs_") && !excerpt.contains("eyJ"), "no credential in the log: {excerpt}");
    assert_eq!(hub.dispatches().len(), 3);
}

#[tokio::test]
async fn the_fake_refuses_dispatches_github_would() {
    // GIVEN the fake with an app installed on the organisation and on another account owning repo-1
    let app = AppSpec {
        more_installations: vec![InstallationSpec { id: OTHER_INSTALLATION, account: OTHER.into() }],
        ..AppSpec::default()
    };
    let spec = OrgSpec { repos: 3, pulls: 1, teams: 0, members: 1, runs: 0, deployments: 0, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let org = hub.org().login.clone();
    hub.transfer_repo(&format!("{org}/repo-1"), OTHER).unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let jwt = octoscope::adapters::github::jwt::AppKey::from_pem(TEST_APP_PRIVATE_KEY)
        .unwrap()
        .jwt(hub.app().app_id, chrono::Utc::now())
        .unwrap();
    // A token of installation `id`, asked with `body`: GitHub's status and answer.
    let mint_with = |id: u64, body: Value| {
        let (client, url, jwt) = (client.clone(), hub.url.clone(), jwt.clone());
        async move {
            let resp = client
                .post(format!("{url}/app/installations/{id}/access_tokens"))
                .bearer_auth(jwt)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let mint = |id: u64| {
        let mint_with = &mint_with;
        async move {
            let (status, v) = mint_with(id, json!({})).await;
            assert_eq!(status, 201, "{v}");
            v["token"].as_str().unwrap().to_owned()
        }
    };
    let org_token = mint(hub.app().installation_id).await;
    let dispatch = |repo: String, token: String, body: Value| {
        let (client, url) = (client.clone(), hub.url.clone());
        async move {
            let resp =
                client.post(format!("{url}/repos/{repo}/dispatches")).bearer_auth(token).json(&body).send().await;
            resp.unwrap().status().as_u16()
        }
    };
    let good = json!({ "event_type": "deploy", "client_payload": { "a": 1 } });

    // WHEN dispatches are sent: the org's token to its own repository, to the other account's, to an
    // unknown repository; without an event_type; with too many client_payload keys; the personal token
    let many: serde_json::Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!(i))).collect();
    let answers = [
        dispatch(format!("{org}/repo-0"), org_token.clone(), good.clone()).await,
        dispatch(format!("{OTHER}/repo-1"), org_token.clone(), good.clone()).await,
        dispatch(format!("{org}/no-such-repo"), org_token.clone(), good.clone()).await,
        dispatch(format!("{org}/repo-0"), org_token.clone(), json!({ "client_payload": {} })).await,
        dispatch(format!("{org}/repo-0"), org_token.clone(), json!({ "event_type": "x", "client_payload": many }))
            .await,
        dispatch(format!("{org}/repo-0"), "ghs_not_a_token".into(), good.clone()).await,
        dispatch(format!("{OTHER}/repo-1"), hub.token().to_owned(), good.clone()).await,
    ];

    // THEN GitHub's answers, and only the accepted ones recorded, with their tokens
    assert_eq!(answers, [204, 403, 404, 422, 422, 401, 204]);
    let recorded = hub.dispatches();
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert_eq!(recorded[0].repo, format!("{org}/repo-0"));
    assert_eq!(recorded[0].client_payload, json!({ "a": 1 }));
    assert_eq!((recorded[0].token.as_str(), recorded[0].installation), (org_token.as_str(), Some(77_001)));
    assert_eq!((recorded[1].token.as_str(), recorded[1].installation), (hub.token(), None));

    // WHEN tokens are minted narrowed: to repo-0 with Contents write, to repo-0 with metadata read
    // only, to another account's repository, and asking for a permission the app is not granted
    let installation = hub.app().installation_id;
    let narrow = |repos: Value, permissions: Value| json!({ "repositories": repos, "permissions": permissions });
    let (status, minted) = mint_with(installation, narrow(json!(["REPO-0"]), json!({ "contents": "write" }))).await;
    assert_eq!(status, 201, "{minted}");
    assert_eq!(minted["repository_selection"], "selected");
    assert_eq!(minted["permissions"], json!({ "contents": "write" }));
    let to_repo_0 = minted["token"].as_str().unwrap().to_owned();
    let (status, minted) = mint_with(installation, narrow(json!(["repo-0"]), json!({ "metadata": "read" }))).await;
    assert_eq!(status, 201, "{minted}");
    let read_only = minted["token"].as_str().unwrap().to_owned();
    let refused = [
        mint_with(installation, narrow(json!(["repo-1"]), json!({ "contents": "write" }))).await.0,
        mint_with(installation, narrow(json!(["repo-0"]), json!({ "administration": "write" }))).await.0,
        mint_with(installation, narrow(json!(["repo-0"]), json!({ "pull_requests": "write" }))).await.0,
    ];
    assert_eq!(
        refused,
        [422, 422, 422],
        "repo-1 is the other account's; administration and pull_requests write are not granted"
    );

    // AND those tokens dispatch: to repo-0, to repo-2 (outside the narrowing), and without Contents write
    let answers = [
        dispatch(format!("{org}/repo-0"), to_repo_0.clone(), good.clone()).await,
        dispatch(format!("{org}/repo-2"), to_repo_0.clone(), good.clone()).await,
        dispatch(format!("{org}/repo-0"), read_only.clone(), good.clone()).await,
    ];
    // THEN only the dispatch the token was narrowed to is taken
    assert_eq!(answers, [204, 404, 403]);
    assert_eq!(hub.dispatches().len(), 3);
    // AND the narrowed token reads nothing of another repository
    let read = |repo: String, token: String| {
        let (client, url) = (client.clone(), hub.url.clone());
        async move {
            client
                .get(format!("{url}/repos/{repo}/actions/runs"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(read(format!("{org}/repo-2"), to_repo_0.clone()).await, 404);
    // AND nor its own repository's runs: it was not granted Actions read
    assert_eq!(read(format!("{org}/repo-0"), to_repo_0.clone()).await, 403);
    assert_eq!(read(format!("{org}/repo-2"), org_token.clone()).await, 200);
}

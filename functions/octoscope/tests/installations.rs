//! A GitHub App installed on two organisations, end to end: `octoscope check`
//! reads each organisation's repositories through its own installation, and
//! `/api/integrity` shows what each installation spent.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use octoscope_fakehub::{AppSpec, FakeHub, HubConfig, InstallationSpec, OrgSpec, TEST_APP_PRIVATE_KEY};
use octoscope_testkit::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "fakehub-webhook-secret";
const OTHER: &str = "other-org";

/// Requests per installation as `/api/integrity` shows them.
fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object of counts: {v}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn integrity_shows_each_installation_s_requests_after_a_check() {
    // GIVEN an app installed on two organisations, two repositories on each
    let app = AppSpec {
        more_installations: vec![InstallationSpec { id: 77_002, account: OTHER.into() }],
        ..AppSpec::default()
    };
    let spec = OrgSpec { repos: 4, pulls: 10, teams: 1, members: 4, runs: 3, ..OrgSpec::default() };
    let hub = FakeHub::start_with(spec, HubConfig { app, ..HubConfig::default() }).await.unwrap();
    let org = hub.org().login.clone();
    for name in [format!("{org}/repo-2"), format!("{org}/repo-3")] {
        hub.transfer_repo(&name, OTHER).unwrap();
    }
    let repos: Vec<String> = hub.org().repos.iter().map(|r| r.full_name()).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_args(
        Path::new(BIN),
        dir.path(),
        &[("GITHUB_WEBHOOK_SECRET", SECRET)],
        &["--check-interval", "0"],
    )
    .unwrap();

    // WHEN octoscope check runs as the app, no installation id given, tracking the four repositories and the org
    let out = Command::new(BIN)
        .args(["check", "--data-dir"])
        .arg(dir.path())
        .env("GITHUB_API_URL", &hub.url)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_APP_INSTALLATION_ID")
        .env_remove("GITHUB_APP_PRIVATE_KEY_PATH")
        .env("GITHUB_APP_ID", hub.app().app_id.to_string())
        .env("GITHUB_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY)
        .env("OCTOSCOPE_REPOS", repos.join(","))
        .env("OCTOSCOPE_ORGS", &org)
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "octoscope check failed: {said}");
    assert!(!said.contains("BEGIN RSA") && !said.contains("ghs_fakehub"), "no secret is printed: {said}");

    // THEN /api/integrity shows the check's requests per installation, adding up to its total
    let client = octoscope_testkit::http().build().unwrap();
    let integrity: Value =
        client.get(format!("{}/api/integrity", server.base)).send().await.unwrap().json().await.unwrap();
    let check = &integrity["items"][0];
    let per = counts(&check["requests_by_installation"]);
    assert_eq!(per.keys().collect::<Vec<_>>(), [&org, &OTHER.to_owned()], "{integrity}");
    assert_eq!(per.values().sum::<u64>(), check["requests"].as_u64().unwrap(), "{check}");
    // AND each resync job spent only the installation of its repository's (or organisation's) owner, and
    // counted only its own requests (jobs run two at a time)
    let jobs = integrity["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 5, "one job per repository of an empty store, and the org's teams: {integrity}");
    let mut all = per.clone();
    for job in jobs {
        assert_eq!(job["state"], "succeeded", "{job}");
        let owner = job["target"]["name"].as_str().unwrap().split('/').next().unwrap().to_owned();
        let spent = counts(&job["requests_by_installation"]);
        assert_eq!(spent.keys().collect::<Vec<_>>(), [&owner], "{job}");
        assert_eq!(spent.values().sum::<u64>(), job["requests"].as_u64().unwrap(), "{job}");
        for (k, v) in spent {
            *all.entry(k).or_default() += v;
        }
    }
    // AND together they are what GitHub saw from each installation, none reading the other's repositories
    assert_eq!(all, hub.installation_requests(), "{integrity}");
    assert_eq!(hub.foreign_reads(), vec![]);
    eprintln!("check: {per:?}; check and resyncs: {all:?}");
}

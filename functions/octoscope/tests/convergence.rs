//! Completeness end to end: a fake GitHub holding a ground-truth organisation
//! delivers its history to a real `octoscope serve` with losses, duplicates and
//! reordering; one `octoscope check` must make the store equal the truth.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use octoscope_fakehub::{FakeHub, Faults, HubConfig, NullNode, Org, OrgSpec, RateLimit, WebhookSpec};
use octoscope_testkit::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "fakehub-webhook-secret";

async fn all(client: &reqwest::Client, base: &str, path: &str) -> Vec<Value> {
    octoscope_testkit::all_items(client, base, path).await
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

/// Every difference between the store and the ground truth: pull requests,
/// reviews, branch heads and teams through the API; workflow runs, jobs,
/// deployments and default-branch commits read from the store's file.
async fn differences(client: &reqwest::Client, base: &str, org: &Org) -> Vec<String> {
    let mut diffs = api_differences(client, base, org).await;
    diffs.extend(store_differences(base, org));
    diffs
}

/// The data directory of the server at `base` (each test's server has its own).
fn data_dir(base: &str) -> std::path::PathBuf {
    DATA_DIRS.lock().unwrap().get(base).cloned().expect("a server started by this test")
}

static DATA_DIRS: std::sync::Mutex<BTreeMap<String, std::path::PathBuf>> = std::sync::Mutex::new(BTreeMap::new());

/// `octoscope serve` on `dir` with `env` and `args`, its data directory remembered for [`store_differences`].
fn serve(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
    let server = Server::start_with_args(Path::new(BIN), dir, env, args).unwrap();
    DATA_DIRS.lock().unwrap().insert(server.base.clone(), dir.to_path_buf());
    server
}

/// Runs (status, conclusion, times), jobs (status, conclusion, runner labels,
/// times: queue time is started − created), deployments (latest status) and
/// the default branch's commits, from the store's SQLite file (read-only, beside
/// the running server) against the truth.
fn store_differences(base: &str, org: &Org) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        data_dir(base).join("octoscope.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    // Rows as (key, described value): columns as text, times to the second, NULL as "-".
    let rows = |sql: &str, params: &[&str]| -> BTreeMap<String, String> {
        let mut stmt = db.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            let cols: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "-".to_owned(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    v => {
                        let text = v.as_str().unwrap().to_owned();
                        match DateTime::parse_from_rfc3339(&text) {
                            Ok(t) => t.timestamp().to_string(),
                            Err(_) => text,
                        }
                    }
                })
                .collect();
            Ok((cols[0].clone(), cols[1..].join(" ")))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let t = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.timestamp().to_string());
    let mut diffs = Vec::new();
    let mut compare = |what: String, ours: BTreeMap<String, String>, truth: BTreeMap<String, String>| {
        let differ: Vec<String> = truth
            .iter()
            .filter(|(k, v)| ours.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {:?} here, truth {v}", ours.get(k)))
            .chain(ours.keys().filter(|k| !truth.contains_key(*k)).map(|k| format!("{k}: here, not on GitHub")))
            .collect();
        if !differ.is_empty() {
            diffs.push(format!("{what}: {} differ, e.g. {:?}", differ.len(), &differ[..differ.len().min(3)]));
        }
    };
    for repo in &org.repos {
        let name = repo.full_name();
        let ours = rows(
            "SELECT id, status, conclusion, created_at, run_started_at, updated_at FROM workflow_runs WHERE repo = ?1",
            &[&name],
        );
        let truth = repo
            .runs
            .iter()
            .map(|r| {
                let v = [
                    r.status.clone(),
                    r.conclusion.clone().unwrap_or("-".into()),
                    t(Some(r.created_at)),
                    t(Some(r.run_started_at)),
                    t(Some(r.updated_at)),
                ];
                (r.id.to_string(), v.join(" "))
            })
            .collect();
        compare(format!("{name} workflow runs"), ours, truth);

        let ours = rows(
            "SELECT id, run_id, status, conclusion, labels, created_at, started_at, completed_at
             FROM workflow_jobs WHERE repo = ?1",
            &[&name],
        );
        let truth = repo
            .runs
            .iter()
            .flat_map(|r| r.jobs.iter())
            .map(|j| {
                let v = [
                    j.run_id.to_string(),
                    j.status.clone(),
                    j.conclusion.clone().unwrap_or("-".into()),
                    serde_json::to_string(&j.labels).unwrap(),
                    t(Some(j.created_at)),
                    t(Some(j.started_at)),
                    t(j.completed_at),
                ];
                (j.id.to_string(), v.join(" "))
            })
            .collect();
        compare(format!("{name} workflow jobs"), ours, truth);

        let ours = rows(
            "SELECT d.id, (SELECT s.state FROM deployment_statuses s WHERE s.deployment_id = d.id
                           ORDER BY s.created_at DESC, s.id DESC LIMIT 1)
             FROM deployments d WHERE d.repo = ?1",
            &[&name],
        );
        let truth = repo
            .deployments
            .iter()
            .map(|d| (d.id.to_string(), d.statuses.last().map_or("-".to_owned(), |s| s.state.clone())))
            .collect();
        compare(format!("{name} deployments (latest status)"), ours, truth);

        let ours = rows(
            "SELECT sha, branch FROM branch_commits WHERE repo = ?1 AND branch = ?2",
            &[&name, &repo.default_branch],
        );
        let truth = repo.commits.iter().map(|c| (c.sha.clone(), repo.default_branch.clone())).collect();
        compare(format!("{name} commits on {}", repo.default_branch), ours, truth);
    }
    diffs
}

/// Every difference the API shows between the store and the ground truth.
async fn api_differences(client: &reqwest::Client, base: &str, org: &Org) -> Vec<String> {
    let mut diffs = Vec::new();
    let repos = all(client, base, "/api/repos").await;
    for repo in &org.repos {
        let name = repo.full_name();
        let pulls = all(client, base, &format!("/api/pulls?repo={name}&state=all")).await;
        let ours: BTreeMap<u64, &Value> = pulls.iter().map(|p| (p["number"].as_u64().unwrap(), p)).collect();
        if ours.len() != repo.pulls.len() {
            diffs.push(format!("{name}: {} pull requests here, {} on GitHub", ours.len(), repo.pulls.len()));
        }
        for truth in &repo.pulls {
            let Some(p) = ours.get(&truth.number) else {
                diffs.push(format!("{name}#{} missing", truth.number));
                continue;
            };
            let state = truth.state.graphql().to_ascii_lowercase();
            if p["state"] != state.as_str()
                || time(&p["merged_at"]) != truth.merged_at
                || time(&p["closed_at"]) != truth.closed_at
            {
                diffs.push(format!(
                    "{name}#{}: state {} merged {} closed {}, truth {state} {:?} {:?}",
                    truth.number, p["state"], p["merged_at"], p["closed_at"], truth.merged_at, truth.closed_at
                ));
            }
            let detail: Value = client
                .get(format!("{base}/api/pulls/{name}/{}", truth.number))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut got: Vec<(i64, String)> = detail["reviews"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].as_i64().unwrap(), r["state"].as_str().unwrap().to_owned()))
                .collect();
            let mut want: Vec<(i64, String)> =
                truth.reviews.iter().map(|r| (r.id, r.state.webhook().to_owned())).collect();
            got.sort();
            want.sort();
            if got != want {
                diffs.push(format!("{name}#{} reviews: {got:?} vs truth {want:?}", truth.number));
            }
        }
        let ours_repo = repos.iter().find(|r| r["full_name"] == name.as_str());
        let heads: BTreeMap<String, String> = ours_repo
            .map(|r| {
                r["branches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| (b["name"].as_str().unwrap().to_owned(), b["head_sha"].as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let truth_heads: BTreeMap<String, String> =
            repo.branches.iter().map(|b| (b.name.clone(), b.head_sha.clone())).collect();
        if heads != truth_heads {
            diffs.push(format!("{name} branch heads: {heads:?} vs truth {truth_heads:?}"));
        }
    }
    let teams = all(client, base, &format!("/api/teams?org={}", org.login)).await;
    for team in &org.teams {
        let mut truth = team.members.clone();
        truth.sort();
        let ours: Vec<String> = teams
            .iter()
            .find(|t| t["slug"] == team.slug.as_str())
            .map(|t| t["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        if ours != truth {
            diffs.push(format!("team {}: {ours:?} vs truth {truth:?}", team.slug));
        }
    }
    if teams.len() != org.teams.len() {
        diffs.push(format!("{} teams here, {} on GitHub", teams.len(), org.teams.len()));
    }
    diffs
}

fn check(data_dir: &Path, hub: &FakeHub, org: &str, dry_run: bool) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--data-dir"]).arg(data_dir);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd
        .env("GITHUB_API_URL", &hub.url)
        .env("GITHUB_TOKEN", hub.token())
        .env("OCTOSCOPE_ORGS", org)
        .env_remove("GITHUB_APP_ID")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "octoscope check failed: {said}");
    said
}

/// How the history is delivered in [`converges`].
fn lossy() -> WebhookSpec {
    WebhookSpec {
        secret: SECRET.into(),
        drop_share: 0.10,
        duplicate_share: 0.05,
        reorder_share: 0.20,
        oversized_event: true,
        concurrency: 4,
        ..WebhookSpec::default()
    }
}

async fn converges(config: HubConfig, spec: WebhookSpec) {
    // GIVEN a ground-truth org of 5 repositories × 100 pull requests, 4 teams,
    // with workflow runs and their jobs, deployments and default-branch history
    let org_spec = OrgSpec { repos: 5, pulls: 100, teams: 4, members: 20, runs: 12, ..OrgSpec::default() };
    let hub = FakeHub::start_with(org_spec, config).await.unwrap();
    let org = hub.org().clone();
    assert_eq!(org.repos.iter().map(|r| r.pulls.len()).sum::<usize>(), 500);
    assert_eq!(org.repos.iter().map(|r| r.runs.len()).sum::<usize>(), 60);
    // AND octoscope serve with AWS's payload limit (a 7 MB event is refused, as API Gateway would)
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("GITHUB_WEBHOOK_SECRET", SECRET), ("OCTOSCOPE_MAX_BODY_BYTES", "6291456")],
        &["--check-interval", "0"],
    );
    // WHEN the history arrives as `spec` says (e.g. 10 % dropped, 5 % duplicated, 20 % reordered, one oversized event)
    let sent = hub.send_webhooks(&format!("{}/webhook", server.base), &spec).await.unwrap();
    if spec.drop_share > 0.0 {
        assert!(!sent.dropped.is_empty() && !sent.duplicated.is_empty() && sent.reordered > 0, "{sent:?}");
    }
    if spec.oversized_event {
        let refused = sent.statuses.get(&413);
        assert_eq!(refused, Some(&1), "the oversized event is refused on arrival: {:?}", sent.statuses);
    }
    assert!(!sent.statuses.keys().any(|s| *s >= 500), "no 5xx: {:?}", sent.statuses);
    let client = octoscope_testkit::http().build().unwrap();
    let before = differences(&client, &server.base, &org).await;
    assert!(!before.is_empty(), "the losses must show before the check");

    // THEN a dry run finds gaps and repairs nothing
    let said = check(dir.path(), &hub, &org.login, true);
    assert!(said.contains("gaps:") && !said.contains("no gaps"), "{said}");
    assert_eq!(differences(&client, &server.base, &org).await.len(), before.len());

    // AND one check makes the store equal the ground truth
    let said = check(dir.path(), &hub, &org.login, false);
    let after = differences(&client, &server.base, &org).await;
    assert!(
        after.is_empty(),
        "after one check, {} differences remain (first: {:?})\n{said}",
        after.len(),
        &after[..after.len().min(5)]
    );
    let integrity: Value =
        client.get(format!("{}/api/integrity", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(integrity["items"].as_array().unwrap().len(), 2, "both checks are recorded: {integrity}");
    assert!(integrity["jobs"].as_array().unwrap().iter().all(|j| j["state"] == "succeeded"), "{integrity}");

    // AND a second check finds nothing left to do, and the search index equal to the store
    let said = check(dir.path(), &hub, &org.login, false);
    assert!(said.contains("no gaps"), "{said}");
    assert!(said.contains("search index: ") && !said.contains("scopes differ"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_check_repairs_drops_duplicates_reordering_and_an_oversized_event() {
    converges(HubConfig::default(), lossy()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_check_finds_every_run_job_and_deployment_status_that_webhooks_never_brought() {
    // Every workflow_run, workflow_job and deployment_status delivery lost for
    // good (not even in the hook's delivery log): only the comparison finds them.
    let lost = ["workflow_run", "workflow_job", "deployment_status"].map(String::from).to_vec();
    converges(HubConfig::default(), WebhookSpec { secret: SECRET.into(), lost_events: lost, ..WebhookSpec::default() })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn it_still_converges_with_5xx_secondary_limits_and_a_rate_limit_that_runs_out() {
    converges(
        HubConfig {
            rate_limit: RateLimit::new(12, Duration::from_secs(2)),
            faults: Faults { server_error_share: 0.05, secondary_limit_share: 0.03, seed: 11 },
            retry_after_secs: 1,
            ..HubConfig::default()
        },
        lossy(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_node_is_skipped_and_reported_and_the_next_check_repairs_it() {
    // GIVEN a repository whose pull request events all got lost
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 30, teams: 0, ..OrgSpec::default() }).await.unwrap();
    let org = hub.org().clone();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)], &["--check-interval", "0"]);
    let lost = ["pull_request", "pull_request_review"].map(String::from).to_vec();
    hub.send_webhooks(
        &format!("{}/webhook", server.base),
        &WebhookSpec { secret: SECRET.into(), lost_events: lost, ..WebhookSpec::default() },
    )
    .await
    .unwrap();
    // AND GitHub answers one of them as a null node, in the check's snapshot and in the resync's page
    let repo = org.repos[0].full_name();
    let number = org.repos[0].pulls[7].number;
    hub.null_node(NullNode::Pull { repo: repo.clone(), number }, 2);
    let client = octoscope_testkit::http().build().unwrap();

    // WHEN the integrity check runs
    let said = check(dir.path(), &hub, &org.login, false);
    // THEN every other pull request is repaired, the job succeeded and says what it skipped
    let left = differences(&client, &server.base, &org).await;
    assert_eq!(
        left,
        vec![format!("{repo}: 29 pull requests here, 30 on GitHub"), format!("{repo}#{number} missing")],
        "{said}"
    );
    let integrity: Value =
        client.get(format!("{}/api/integrity", server.base)).send().await.unwrap().json().await.unwrap();
    let jobs = integrity["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{integrity}");
    let skipped: Vec<&str> =
        jobs.iter().flat_map(|j| j["skipped"].as_array().unwrap()).map(|s| s.as_str().unwrap()).collect();
    assert_eq!(skipped.len(), 1, "{integrity}");
    assert!(skipped[0].contains(&repo), "the skipped item names where it was: {skipped:?}");

    // WHEN the next check runs (GitHub answers the node again)
    let said = check(dir.path(), &hub, &org.login, false);
    // THEN it finds the missing pull request and repairs it
    let left = differences(&client, &server.base, &org).await;
    assert!(left.is_empty(), "{left:?}\n{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_renamed_and_another_transferred_while_webhooks_were_down_move_whole() {
    // GIVEN three repositories whose whole history arrived by webhook
    let hub = FakeHub::start(OrgSpec { repos: 3, pulls: 20, teams: 1, members: 4, runs: 4, ..OrgSpec::default() })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)], &["--check-interval", "0"]);
    let spec = WebhookSpec { secret: SECRET.into(), concurrency: 4, ..WebhookSpec::default() };
    hub.send_webhooks(&format!("{}/webhook", server.base), &spec).await.unwrap();
    let login = hub.org().login.clone();
    // WHEN, with webhooks down, one repository is renamed and another transferred to another account
    let (renamed, transferred) = (format!("{login}/repo-0"), format!("{login}/repo-1"));
    hub.rename_repo(&renamed, "renamed-0").unwrap();
    hub.transfer_repo(&transferred, "octo-labs").unwrap();
    let org = hub.org().clone();
    let client = octoscope_testkit::http().build().unwrap();
    assert!(!differences(&client, &server.base, &org).await.is_empty(), "the new names are unknown before the check");
    // AND the integrity check runs
    let said = check(dir.path(), &hub, &org.login, false);

    // THEN the store equals the truth under the new names: pull requests, reviews, runs, jobs, deployments, commits
    let left = differences(&client, &server.base, &org).await;
    assert!(left.is_empty(), "{} differences, e.g. {:?}\n{said}", left.len(), &left[..left.len().min(3)]);
    // AND the old names still filter, answering under the new names
    for (old, new) in [(&renamed, format!("{login}/renamed-0")), (&transferred, "octo-labs/repo-1".to_owned())] {
        let pulls = all(&client, &server.base, &format!("/api/pulls?repo={old}&state=all")).await;
        assert_eq!(pulls.len(), 20, "{old}");
        assert!(pulls.iter().all(|p| p["repo"] == new.as_str()), "{old}: {:?}", pulls[0]["repo"]);
    }
    // AND the repositories and the metrics per repository show each repository once, under its new name
    let repos: Vec<String> = all(&client, &server.base, "/api/repos")
        .await
        .iter()
        .map(|r| r["full_name"].as_str().unwrap().to_owned())
        .collect();
    let mut truth: Vec<String> = org.repos.iter().map(|r| r.full_name()).collect();
    truth.sort();
    let mut sorted = repos.clone();
    sorted.sort();
    assert_eq!(sorted, truth, "one row each, under the new names");
    let metrics: Value = client
        .get(format!(
            "{}/api/metrics/pulls?since=2023-12-01T00:00:00Z&until=2024-07-01T00:00:00Z&group_by=repo",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<String> =
        metrics["groups"].as_array().unwrap().iter().filter_map(|g| g["key"].as_str().map(str::to_owned)).collect();
    keys.sort();
    assert_eq!(keys, truth, "{metrics}");
    // AND a second check finds nothing left to do
    let said = check(dir.path(), &hub, &org.login, false);
    assert!(said.contains("no gaps"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_checks_on_its_schedule_and_repairs_by_itself() {
    // GIVEN octoscope serve with GitHub credentials and a 1 s check interval
    let hub =
        FakeHub::start(OrgSpec { repos: 2, pulls: 30, teams: 2, members: 8, ..OrgSpec::default() }).await.unwrap();
    let org = hub.org().clone();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("GITHUB_WEBHOOK_SECRET", SECRET), ("GITHUB_API_URL", &hub.url), ("GITHUB_TOKEN", hub.token())],
        &["--check-interval", "1s"],
    );
    // WHEN the history arrives with a fifth of it lost
    let spec = WebhookSpec { secret: SECRET.into(), drop_share: 0.2, concurrency: 4, ..WebhookSpec::default() };
    hub.send_webhooks(&format!("{}/webhook", server.base), &spec).await.unwrap();
    // THEN, with nobody running a command, the store comes to equal the ground truth
    let client = octoscope_testkit::http().build().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let diffs = differences(&client, &server.base, &org).await;
        if diffs.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {} differences, e.g. {:?}", diffs.len(), &diffs[..1]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let integrity: Value =
        client.get(format!("{}/api/integrity", server.base)).send().await.unwrap().json().await.unwrap();
    let checks = integrity["items"].as_array().unwrap();
    let redelivered: u64 = checks.iter().map(|c| c["redelivered"].as_u64().unwrap()).sum();
    let written: u64 = integrity["jobs"].as_array().unwrap().iter().map(|j| j["written"].as_u64().unwrap()).sum();
    assert!(redelivered + written > 0, "the scheduled checks did the repair: {integrity}");
}

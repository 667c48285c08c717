//! The metrics API on hand-built data with known answers: the real Router over
//! the real SQLite store on disk, data written through `Store::apply_changes`.
//! Definitions: shared/docs/metrics.md.

mod common;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use common::TestApp;
use octoscope::domain::*;
use octoscope::domain::{CheckRun, Gap, GapKind, JobRecord, JobState, Target};
use octoscope::ports::store::*;
use serde_json::Value;

/// Monday 2026-03-02 09:00 UTC (ISO week 2026-W10), plus `hours`.
fn mon(hours: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

struct Pr {
    repo: &'static str,
    number: u64,
    author: &'static str,
    created: Timestamp,
    merged: Option<Timestamp>,
    size: Option<(i64, i64)>,
}

impl Pr {
    fn new(number: u64, author: &'static str, created: Timestamp, merged: Option<Timestamp>) -> Self {
        Self { repo: "acme/api", number, author, created, merged, size: None }
    }

    fn change(&self) -> Change {
        let state = if self.merged.is_some() { PrState::Merged } else { PrState::Open };
        Change::pull_request(PullRequest {
            repo: repo(self.repo),
            number: self.number,
            id: Some(self.number as i64),
            title: format!("PR {}", self.number),
            state,
            draft: false,
            author: Some(self.author.into()),
            created_at: self.created,
            updated_at: self.merged.unwrap_or(self.created),
            closed_at: self.merged,
            merged_at: self.merged,
            additions: self.size.map(|s| s.0),
            deletions: self.size.map(|s| s.1),
            changed_files: None,
            commits: None,
            labels: vec![],
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: None,
            head_sha: None,
            body: None,
        })
    }
}

fn review(pr: u64, id: i64, author: &str, state: ReviewState, at: Timestamp) -> Change {
    Change::Review(Review {
        repo: repo("acme/api"),
        pr_number: pr,
        id,
        author: Some(author.into()),
        state,
        submitted_at: Some(at),
        commit_id: None,
        body: None,
    })
}

fn member(slug: &str, login: &str, present: bool, at: Timestamp) -> Change {
    Change::TeamMember {
        org: "acme".into(),
        team_slug: slug.into(),
        member: Membership { login: login.into(), role: None, present, version: at },
    }
}

struct Run {
    id: i64,
    workflow: &'static str,
    branch: &'static str,
    created: Timestamp,
    started: Option<Timestamp>,
    updated: Timestamp,
    conclusion: Option<&'static str>,
}

impl Run {
    /// Run `id` of `workflow` on `branch`, created and started at `at` and last
    /// updated `minutes` later: completed with `conclusion`, or in progress.
    fn new(
        id: i64,
        workflow: &'static str,
        branch: &'static str,
        at: Timestamp,
        minutes: i64,
        conclusion: Option<&'static str>,
    ) -> Self {
        Self {
            id,
            workflow,
            branch,
            created: at,
            started: Some(at),
            updated: at + Duration::minutes(minutes),
            conclusion,
        }
    }

    fn change(&self) -> Change {
        Change::WorkflowRun(WorkflowRun {
            repo: repo("acme/api"),
            id: self.id,
            name: Some(self.workflow.into()),
            workflow_id: Some(1),
            head_branch: Some(self.branch.into()),
            head_sha: None,
            event: Some("push".into()),
            status: if self.conclusion.is_some() { RunStatus::Completed } else { RunStatus::InProgress },
            conclusion: self.conclusion.map(Into::into),
            run_number: Some(self.id),
            run_attempt: Some(1),
            actor: Some("alice".into()),
            created_at: self.created,
            run_started_at: self.started,
            updated_at: self.updated,
        })
    }
}

fn job(id: i64, run_id: i64, labels: &[&str], os: &str, created: Timestamp, queued_s: i64, ran_s: i64) -> Change {
    let started = created + Duration::seconds(queued_s);
    Change::WorkflowJob(WorkflowJob {
        repo: repo("acme/api"),
        id,
        run_id,
        name: format!("job {id}"),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::Completed,
        conclusion: Some("success".into()),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        runner_name: None,
        runner_group: None,
        os: Some(os.into()),
        created_at: Some(created),
        started_at: Some(started),
        completed_at: Some(started + Duration::seconds(ran_s)),
    })
}

fn deployment(id: i64, env: &str, at: Timestamp) -> Change {
    common::changes::deployment(repo("acme/api"), id, env, at)
}

fn status(deployment_id: i64, id: i64, state: &str, at: Timestamp) -> Change {
    common::changes::deployment_status(repo("acme/api"), deployment_id, id, state, None, at)
}

async fn given(changes: Vec<Change>) -> TestApp {
    let app = TestApp::new();
    app.store.apply_changes(&changes).await.unwrap();
    app
}

/// GET a metrics path, expecting 200.
async fn metrics(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

const WEEK: &str = "since=2026-03-02&until=2026-03-09";

fn group<'a>(body: &'a Value, key: Option<&str>) -> &'a Value {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"].as_str() == key)
        .unwrap_or_else(|| panic!("no group {key:?} in {body}"))
}

#[tokio::test]
async fn cycle_time_of_a_pr_opened_monday_merged_tuesday_is_one_day() {
    // GIVEN a PR opened Monday 09:00 and merged Tuesday 09:00
    let app = given(vec![Pr::new(1, "alice", mon(0), Some(mon(24))).change()]).await;
    // WHEN pull request flow is asked for that week
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}")).await;
    // THEN one merge, cycle time 86,400 s, counted in ISO week 2026-W10
    let g = group(&body, None);
    assert_eq!(g["merged"], 1);
    assert_eq!(g["cycle_time_seconds"]["count"], 1);
    assert_eq!(g["cycle_time_seconds"]["p50"], 86_400);
    assert_eq!(g["cycle_time_seconds"]["p90"], 86_400);
    assert_eq!(g["throughput"], serde_json::json!([{ "week": "2026-W10", "week_start": "2026-03-02", "count": 1 }]));
}

#[tokio::test]
async fn time_to_first_review_counts_only_reviews_by_someone_else() {
    // GIVEN PR 1 (09:00) commented on by its author at 09:10 and approved by bob at 11:00,
    // and PR 2 reviewed only by its own author
    let app = given(vec![
        Pr::new(1, "alice", mon(0), None).change(),
        review(1, 10, "alice", ReviewState::Commented, mon(0) + Duration::minutes(10)),
        review(1, 11, "bob", ReviewState::Approved, mon(2)),
        Pr::new(2, "carol", mon(1), None).change(),
        review(2, 20, "carol", ReviewState::Commented, mon(3)),
    ])
    .await;
    // WHEN pull request flow is asked for
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}")).await;
    // THEN PR 1's first review took 7,200 s (the author's own comment does not count) and PR 2 is unreviewed
    let g = group(&body, None);
    assert_eq!(g["time_to_first_review_seconds"]["count"], 1);
    assert_eq!(g["time_to_first_review_seconds"]["p50"], 7_200);
    assert_eq!(g["unreviewed"], 1);
}

#[tokio::test]
async fn review_rounds_are_one_plus_changes_requested_and_size_is_additions_plus_deletions() {
    // GIVEN three merged PRs: with two standing change requests, with none, with one that was dismissed
    let mut p1 = Pr::new(1, "alice", mon(0), Some(mon(5)));
    p1.size = Some((100, 20));
    let mut p2 = Pr::new(2, "alice", mon(0), Some(mon(6)));
    p2.size = Some((5, 5));
    let p3 = Pr::new(3, "alice", mon(0), Some(mon(7)));
    let app = given(vec![
        p1.change(),
        review(1, 10, "bob", ReviewState::ChangesRequested, mon(1)),
        review(1, 11, "bob", ReviewState::ChangesRequested, mon(2)),
        review(1, 12, "bob", ReviewState::Approved, mon(3)),
        p2.change(),
        p3.change(),
        review(3, 30, "bob", ReviewState::ChangesRequested, mon(1)),
        review(3, 30, "bob", ReviewState::Dismissed, mon(1)),
    ])
    .await;
    // WHEN pull request flow is asked for
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}")).await;
    let g = group(&body, None);
    // THEN rounds are [1, 1, 3] (a dismissed request does not count): nearest-rank p50 1, p90 3
    assert_eq!(g["review_rounds"], serde_json::json!({ "count": 3, "p50": 1, "p90": 3, "p95": 3 }));
    // AND sizes are [10, 120] (PR 3 has no size): p50 10, p90 120
    assert_eq!(g["size_lines"], serde_json::json!({ "count": 2, "p50": 10, "p90": 120, "p95": 120 }));
}

#[tokio::test]
async fn team_filter_and_grouping_follow_present_membership() {
    // GIVEN alice in core, bob added to core then removed, carol in no team; one merged PR each
    let app = given(vec![
        member("core", "alice", true, mon(-10)),
        member("core", "bob", true, mon(-10)),
        member("core", "bob", false, mon(-5)),
        member("web", "bob", true, mon(-5)),
        Pr::new(1, "alice", mon(0), Some(mon(1))).change(),
        Pr::new(2, "bob", mon(0), Some(mon(2))).change(),
        Pr::new(3, "carol", mon(0), Some(mon(3))).change(),
    ])
    .await;
    // WHEN filtered by team acme/core THEN only alice's PR counts
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}&team=acme/core")).await;
    assert_eq!(group(&body, None)["merged"], 1);
    assert_eq!(group(&body, None)["cycle_time_seconds"]["p50"], 3_600);
    // WHEN a bare slug is used THEN the same
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}&team=core")).await;
    assert_eq!(group(&body, None)["merged"], 1);
    // WHEN grouped by team THEN core has alice's, web has bob's, carol's is outside every team (key null)
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}&group_by=team")).await;
    assert_eq!(group(&body, Some("acme/core"))["merged"], 1);
    assert_eq!(group(&body, Some("acme/web"))["merged"], 1);
    assert_eq!(group(&body, Some("acme/web"))["cycle_time_seconds"]["p50"], 7_200);
    assert_eq!(group(&body, None)["merged"], 1);
    assert_eq!(body["groups"].as_array().unwrap().len(), 3);
    // WHEN filtered by author THEN only that author's PR
    let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}&author=carol&group_by=author")).await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    assert_eq!(group(&body, Some("carol"))["merged"], 1);
}

#[tokio::test]
async fn window_includes_since_and_excludes_until() {
    // GIVEN PRs merged exactly at `since`, a second before `until`, and exactly at `until`
    let since = mon(0);
    let until = mon(24);
    let app = given(vec![
        Pr::new(1, "alice", mon(-48), Some(since)).change(),
        Pr::new(2, "alice", mon(-48), Some(until - Duration::seconds(1))).change(),
        Pr::new(3, "alice", mon(-48), Some(until)).change(),
    ])
    .await;
    // WHEN asked for [since, until)
    let body = metrics(&app, "/api/metrics/pulls?since=2026-03-02T09:00:00Z&until=2026-03-03T09:00:00Z").await;
    // THEN the first two count, the third does not
    assert_eq!(group(&body, None)["merged"], 2);
    assert_eq!(body["window"]["since"], "2026-03-02T09:00:00Z");
    // AND an offset time means the same instant
    let body = metrics(&app, "/api/metrics/pulls?since=2026-03-02T10:00:00%2B01:00&until=2026-03-03T09:00:00Z").await;
    assert_eq!(group(&body, None)["merged"], 2);
}

#[tokio::test]
async fn open_pull_requests_are_bucketed_by_age_at_the_end_of_the_window() {
    // GIVEN open PRs aged 12 h, exactly 1 d, 5 d, 10 d and 40 d at `until`, and one merged PR
    let until = mon(0);
    let ages = [12, 24, 5 * 24, 10 * 24, 40 * 24];
    let mut changes: Vec<Change> = ages
        .iter()
        .enumerate()
        .map(|(i, h)| Pr::new(i as u64 + 1, "alice", until - Duration::hours(*h), None).change())
        .collect();
    changes.push(Pr::new(9, "alice", until - Duration::hours(30), Some(until - Duration::hours(1))).change());
    let app = given(changes).await;
    // WHEN asked for the week ending at `until`
    let body = metrics(&app, "/api/metrics/pulls?since=2026-02-23T09:00:00Z&until=2026-03-02T09:00:00Z").await;
    // THEN one in each bucket (lower bounds inclusive: exactly 1 d is in 1–3 d)
    assert_eq!(
        group(&body, None)["open_by_age"],
        serde_json::json!({ "total": 5, "lt_1d": 1, "d1_to_3": 1, "d3_to_7": 1, "d7_to_30": 1, "gt_30d": 1 })
    );
}

#[tokio::test]
async fn ci_queue_time_duration_and_failure_rate() {
    // GIVEN two completed runs (one failed) of 10 and 30 minutes, one run in progress,
    // and jobs queued 90 s (linux) and 30 s (macOS)
    let app = given(vec![
        Run::new(1, "CI", "main", mon(0), 10, Some("success")).change(),
        Run::new(2, "CI", "feature", mon(1), 30, Some("failure")).change(),
        Run::new(3, "Deploy", "main", mon(2), 0, None).change(),
        job(100, 1, &["ubuntu-latest"], "linux", mon(0), 90, 300),
        job(101, 2, &["self-hosted", "macos"], "macos", mon(1), 30, 600),
    ])
    .await;
    // WHEN CI metrics are asked for
    let body = metrics(&app, &format!("/api/metrics/ci?{WEEK}")).await;
    let g = group(&body, None);
    // THEN runs: 3, 2 completed, 1 failed → failure rate 0.5; durations [600, 1800]
    assert_eq!(g["runs"]["count"], 3);
    assert_eq!(g["runs"]["completed"], 2);
    assert_eq!(g["runs"]["failure_rate"], 0.5);
    assert_eq!(g["runs"]["duration_seconds"]["p50"], 600);
    assert_eq!(g["runs"]["duration_seconds"]["p95"], 1_800);
    // AND jobs: queue times [30, 90]
    assert_eq!(g["jobs"]["queue_seconds"], serde_json::json!({ "count": 2, "p50": 30, "p90": 90, "p95": 90 }));
    // WHEN grouped by runner label THEN the linux job's 90 s queue is under ubuntu-latest, runs are not shown
    let body = metrics(&app, &format!("/api/metrics/ci?{WEEK}&group_by=runner")).await;
    assert_eq!(group(&body, Some("ubuntu-latest"))["jobs"]["queue_seconds"]["p50"], 90);
    assert_eq!(group(&body, Some("self-hosted"))["jobs"]["queue_seconds"]["p50"], 30);
    assert_eq!(group(&body, Some("ubuntu-latest"))["runs"], Value::Null);
    // WHEN grouped by OS THEN linux and macos
    let body = metrics(&app, &format!("/api/metrics/ci?{WEEK}&group_by=os")).await;
    assert_eq!(group(&body, Some("linux"))["jobs"]["count"], 1);
    // WHEN grouped by branch THEN the failed run is feature's
    let body = metrics(&app, &format!("/api/metrics/ci?{WEEK}&group_by=branch")).await;
    assert_eq!(group(&body, Some("feature"))["runs"]["failure_rate"], 1.0);
    assert_eq!(group(&body, Some("main"))["runs"]["failure_rate"], 0.0);
    // WHEN filtered by workflow THEN only its runs
    let body = metrics(&app, &format!("/api/metrics/ci?{WEEK}&workflow=Deploy")).await;
    assert_eq!(group(&body, None)["runs"]["count"], 1);
    assert_eq!(group(&body, None)["runs"]["failure_rate"], Value::Null);
}

#[tokio::test]
async fn dora_frequency_lead_time_and_change_failure_rate() {
    // GIVEN PR 1 merged Monday 10:00 and PR 2 merged Tuesday 12:00
    // AND production deployments: #1 Monday 12:00 succeeded (later made inactive), #2 Tuesday 09:00 failed,
    //     #3 Tuesday 15:00 errored then succeeded on retry (latest final status: success), #4 Wednesday pending
    let app = given(vec![
        Pr::new(1, "alice", mon(-24), Some(mon(1))).change(),
        Pr::new(2, "alice", mon(-24), Some(mon(27))).change(),
        deployment(1, "production", mon(3)),
        status(1, 11, "success", mon(3)),
        status(1, 12, "inactive", mon(30)),
        deployment(2, "production", mon(24)),
        status(2, 21, "failure", mon(24)),
        deployment(3, "production", mon(30)),
        status(3, 31, "error", mon(30)),
        status(3, 32, "success", mon(31)),
        deployment(4, "production", mon(48)),
        status(4, 41, "pending", mon(48)),
    ])
    .await;
    // WHEN DORA metrics are asked for
    let body = metrics(&app, &format!("/api/metrics/dora?{WEEK}")).await;
    let g = &body["groups"][0];
    assert_eq!(g["environment"], "production");
    // THEN 4 deployments, 2 successful, 1 failed, 3 with an outcome → change failure rate 1/3
    assert_eq!(g["deployments"], 4);
    assert_eq!(g["successful"], 2);
    assert_eq!(g["failed"], 1);
    assert_eq!(g["with_outcome"], 3);
    assert!((g["change_failure_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    // AND deployment frequency: 2 successful in week 2026-W10 (a 7-day window: 2 per week)
    assert_eq!(g["deployment_frequency"][0]["count"], 2);
    assert_eq!(g["deployments_per_week"], 2.0);
    // AND lead times: PR 1 → #1 (2 h = 7,200 s), PR 2 → #3 (3 h = 10,800 s; #2 failed)
    assert_eq!(g["lead_time_seconds"], serde_json::json!({ "count": 2, "p50": 7_200, "p90": 10_800, "p95": 10_800 }));
    assert_eq!(g["undeployed"], 0);
}

#[tokio::test]
async fn data_health_shows_last_webhook_check_gaps_and_jobs() {
    // GIVEN a webhook delivered for its repository, a check that found a gap, and a failed resync job
    let app = TestApp::new();
    let (status, _) = app.deliver("pull_request", &common::fixture("pull_request", "opened.payload.json")).await;
    assert_eq!(status, StatusCode::OK);
    let delivered: Value = serde_json::from_slice(&common::fixture("pull_request", "opened.payload.json")).unwrap();
    let name = delivered["repository"]["full_name"].as_str().unwrap().to_owned();
    let target = Target::Repo(repo(&name));
    app.store
        .record_check(&CheckRun {
            id: "check-1".into(),
            started_at: mon(0),
            finished_at: mon(0) + Duration::seconds(5),
            repos_compared: 1,
            orgs_compared: 0,
            gaps: vec![Gap { target: target.clone(), kind: GapKind::Pulls, watermark: None, reason: "count".into() }],
            redelivered: 0,
            requests: 2,
            requests_by_installation: InstallationRequests::default(),
            dry_run: false,
            verified: vec![],
            error: None,
            search: None,
        })
        .await
        .unwrap();
    app.store
        .save_job(&JobRecord {
            id: "job-1".into(),
            target: target.clone(),
            kinds: vec![GapKind::Pulls],
            watermark: None,
            state: JobState::Failed,
            created_at: mon(0),
            started_at: Some(mon(0)),
            finished_at: Some(mon(1)),
            written: 0,
            requests: 1,
            requests_by_installation: InstallationRequests::default(),
            skipped: Vec::new(),
            error: Some("boom".into()),
        })
        .await
        .unwrap();
    // WHEN data health is asked for that repository
    let body = metrics(&app, &format!("/api/metrics/health?repo={name}")).await;
    let r = &body["repos"][0];
    // THEN it shows the webhook's receipt, the check, its gap and the failed job
    assert_eq!(r["repo"], name.as_str());
    assert!(r["last_webhook_at"].is_string(), "{body}");
    assert_eq!(r["last_check_at"], "2026-03-02T09:00:05Z");
    assert_eq!(r["open_gaps"].as_array().unwrap().len(), 1);
    assert_eq!(r["jobs"]["failed"], 1);
    assert_eq!(r["last_job"]["id"], "job-1");
    // AND without a filter every tracked repository is listed
    let body = metrics(&app, "/api/metrics/health").await;
    assert!(body["repos"].as_array().unwrap().iter().any(|r| r["repo"] == name.as_str()));
}

#[tokio::test]
async fn any_two_times_make_a_window_and_the_answer_says_which() {
    let app = TestApp::new();
    for (query, since, until) in [
        // GIVEN since after until THEN the empty window at until
        ("since=2026-03-02&until=2026-03-01", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        // GIVEN since equal to until THEN that empty window
        ("since=2026-03-01T00:00:00Z&until=2026-03-01", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        // GIVEN a window longer than 3660 days THEN its last 3660 days
        ("since=2000-01-01&until=2026-03-01", "2016-02-22T00:00:00Z", "2026-03-01T00:00:00Z"),
        // GIVEN exactly 3660 days THEN all of it
        ("since=2016-02-22&until=2026-03-01", "2016-02-22T00:00:00Z", "2026-03-01T00:00:00Z"),
    ] {
        for endpoint in ["pulls", "ci", "dora"] {
            let path = format!("/api/metrics/{endpoint}?{query}");
            let body = metrics(&app, &path).await;
            assert_eq!(body["window"], serde_json::json!({ "since": since, "until": until }), "{path}");
        }
    }
    // AND an empty window counts nothing: a pull request merged in the week
    // is counted for the week and not for the week turned round
    let app = given(vec![Pr::new(1, "alice", mon(0), Some(mon(24))).change()]).await;
    let week = metrics(&app, &format!("/api/metrics/pulls?{WEEK}")).await;
    assert_eq!(group(&week, None)["merged"], 1, "{week}");
    let empty = metrics(&app, "/api/metrics/pulls?since=2026-03-09&until=2026-03-02").await;
    assert_eq!(group(&empty, None)["merged"], 0, "{empty}");
    assert_eq!(group(&empty, None)["cycle_time_seconds"]["count"], 0, "{empty}");
}

#[tokio::test]
async fn query_parameters_are_strict() {
    let app = TestApp::new();
    for (path, needle) in [
        ("/api/metrics/pulls?bogus=1", "unknown query parameter"),
        ("/api/metrics/pulls?group_by=workflow", "group_by must be one of repo, team, author"),
        ("/api/metrics/pulls?since=yesterday", "since must be an ISO-8601"),
        ("/api/metrics/pulls?team=a/b/c", "team must be"),
        ("/api/metrics/pulls?repo=nope", "repo"),
        ("/api/metrics/pulls?author=a&author=b", "given twice"),
        ("/api/metrics/ci?environment=prod", "unknown query parameter"),
        ("/api/metrics/dora?group_by=workflow", "group_by must be one of repo"),
        ("/api/metrics/health?since=2026-01-01", "unknown query parameter"),
    ] {
        // GIVEN a bad query WHEN asked THEN 400 with a message saying what is wrong
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{path}: {msg}");
    }
    // GIVEN no data WHEN asked with defaults THEN 200, one empty group, a 90-day window
    let body = metrics(&app, "/api/metrics/pulls").await;
    assert_eq!(group(&body, None)["merged"], 0);
    assert_eq!(group(&body, None)["cycle_time_seconds"]["p50"], Value::Null);
    assert!(group(&body, None)["throughput"].as_array().unwrap().len() >= 13);
}

/// The first method of every `.route("…", get(…))` in api.rs, in the same order as [`router_paths`].
fn router_methods() -> Vec<&'static str> {
    let src = include_str!("../src/api/mod.rs");
    src.split(".route(\"")
        .skip(1)
        .map(|rest| rest.split_once("\", ").unwrap().1.split('(').next().unwrap().trim())
        .collect()
}

/// Every `.route("…")` in api.rs, as the client sees it (under `/api` unless the webhook).
fn router_paths() -> Vec<String> {
    let src = include_str!("../src/api/mod.rs");
    src.split(".route(\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .map(|p| if p == "/webhook" { p.to_owned() } else { format!("/api{p}") })
        .collect()
}

#[tokio::test]
async fn openapi_describes_every_route() {
    // GIVEN the Router WHEN /api/openapi.json is fetched
    let app = TestApp::new();
    let (status, doc) = app.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    // THEN it is OpenAPI 3.1 and names every route of the Router, with a method the Router serves
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    let routes = router_paths();
    assert!(routes.len() >= 15, "{routes:?}");
    for (route, method) in router_paths().iter().zip(router_methods()) {
        let item = paths.get(route).unwrap_or_else(|| panic!("{route} is not in openapi.json"));
        assert!(item.get(method).is_some(), "{route} has no {method} in openapi.json");
    }
    // AND it describes no route the Router does not have
    for path in paths.keys() {
        assert!(routes.contains(path), "openapi.json has {path}, the Router does not");
    }
}

#[tokio::test]
async fn review_facts_do_not_depend_on_arrival_order() {
    // GIVEN reviews that arrive before their pull request, one by the author and one by bob,
    // then a change request by bob that is later dismissed
    let changes = [
        review(1, 10, "alice", ReviewState::Commented, mon(1)),
        review(1, 11, "bob", ReviewState::ChangesRequested, mon(2)),
        review(1, 12, "carol", ReviewState::ChangesRequested, mon(3)),
        Pr::new(1, "alice", mon(0), Some(mon(5))).change(),
        review(1, 12, "carol", ReviewState::Dismissed, mon(3)),
    ];
    for order in [vec![0, 1, 2, 3, 4], vec![3, 4, 2, 1, 0], vec![1, 3, 0, 4, 2]] {
        let app = TestApp::new();
        for i in &order {
            app.store.apply_changes(std::slice::from_ref(&changes[*i])).await.unwrap();
        }
        // WHEN pull request flow is asked for
        let body = metrics(&app, &format!("/api/metrics/pulls?{WEEK}")).await;
        let g = group(&body, None);
        // THEN in every order: first review by someone else after 2 h, 2 rounds (carol's request was dismissed)
        assert_eq!(g["time_to_first_review_seconds"]["p50"], 7_200, "order {order:?}");
        assert_eq!(g["review_rounds"]["p50"], 2, "order {order:?}");
    }
}

#[tokio::test]
async fn dora_groups_by_repository_and_filters_lead_time_by_author() {
    // GIVEN acme/api: alice's PR merged Monday 10:00, bob's merged Monday 11:00, a successful production
    // deployment Monday 12:00; and acme/web: a staging deployment that failed
    let mut web = Pr::new(7, "alice", mon(-24), Some(mon(1)));
    web.repo = "acme/web";
    let web_deployment = Change::Deployment(Deployment {
        repo: repo("acme/web"),
        id: 9,
        sha: None,
        git_ref: None,
        environment: Some("staging".into()),
        task: None,
        creator: None,
        created_at: mon(5),
        updated_at: mon(5),
    });
    let web_status = Change::DeploymentStatus(DeploymentStatus {
        repo: repo("acme/web"),
        deployment_id: 9,
        id: 91,
        state: "failure".into(),
        environment: None,
        creator: None,
        created_at: mon(5),
        updated_at: mon(5),
    });
    let app = given(vec![
        Pr::new(1, "alice", mon(-24), Some(mon(1))).change(),
        Pr::new(2, "bob", mon(-24), Some(mon(2))).change(),
        deployment(1, "production", mon(3)),
        status(1, 11, "success", mon(3)),
        web.change(),
        web_deployment,
        web_status,
    ])
    .await;
    // WHEN grouped by repository
    let body = metrics(&app, &format!("/api/metrics/dora?{WEEK}&group_by=repo")).await;
    let groups = body["groups"].as_array().unwrap();
    // THEN one group per (repository, environment)
    assert_eq!(groups.len(), 2, "{body}");
    let api = groups.iter().find(|g| g["repo"] == "acme/api").unwrap();
    assert_eq!(api["environment"], "production");
    // AND acme/api's lead times are 2 h and 1 h; acme/web's PR is not counted there (no successful deployment)
    assert_eq!(api["lead_time_seconds"]["count"], 2);
    assert_eq!(api["lead_time_seconds"]["p50"], 3_600);
    let web = groups.iter().find(|g| g["repo"] == "acme/web").unwrap();
    assert_eq!(web["change_failure_rate"], 1.0);
    assert_eq!(web["lead_time_seconds"]["count"], 0);
    // WHEN lead time is filtered by author THEN only alice's PR (2 h); deployments are unaffected
    let body = metrics(&app, &format!("/api/metrics/dora?{WEEK}&author=alice&environment=production")).await;
    let g = &body["groups"][0];
    assert_eq!(g["lead_time_seconds"]["count"], 1);
    assert_eq!(g["lead_time_seconds"]["p50"], 7_200);
    assert_eq!(g["deployments"], 1);
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
}

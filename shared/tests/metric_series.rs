//! The metrics API's series (`interval`), previous period (`compare`) and
//! lists (`top`) on hand-built data: the real Router over the SQLite store on
//! disk. Each bucket must carry the figures a request for its window gives.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::TestApp;
use octoscope::domain::*;
use octoscope::ports::store::*;
use serde_json::Value;

/// Monday 2026-03-02 09:00 UTC (ISO week 2026-W10), plus `hours`.
fn mon(hours: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn pull(number: u64, author: &str, created: Timestamp, merged: Option<Timestamp>) -> Change {
    Change::pull_request(PullRequest {
        repo: repo("acme/api"),
        number,
        id: Some(number as i64),
        title: format!("PR {number}"),
        state: if merged.is_some() { PrState::Merged } else { PrState::Open },
        draft: false,
        author: Some(author.into()),
        created_at: created,
        updated_at: merged.unwrap_or(created),
        closed_at: merged,
        merged_at: merged,
        additions: Some(number as i64),
        deletions: Some(1),
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

fn review(pr: u64, id: i64, author: &str, at: Timestamp) -> Change {
    Change::Review(Review {
        repo: repo("acme/api"),
        pr_number: pr,
        id,
        author: Some(author.into()),
        state: ReviewState::Approved,
        submitted_at: Some(at),
        commit_id: None,
        body: None,
    })
}

fn job(id: i64, created: Timestamp, queued_s: i64) -> Change {
    let started = created + Duration::seconds(queued_s);
    Change::WorkflowJob(WorkflowJob {
        repo: repo("acme/api"),
        id,
        run_id: 1,
        name: format!("job {id}"),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::Completed,
        conclusion: Some(if id % 3 == 0 { "failure" } else { "success" }.into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        created_at: Some(created),
        started_at: Some(started),
        completed_at: Some(started + Duration::seconds(60 * id)),
    })
}

/// Three weeks of pull requests and jobs: each day of weeks 10-12 one pull
/// request opened at 09:00+day, merged `day` hours later, reviewed after
/// `2 × day` hours when the day is even; one job per day.
async fn app() -> TestApp {
    let app = TestApp::new();
    let mut changes = Vec::new();
    for day in 0..21i64 {
        let n = day as u64 + 1;
        let created = mon(24 * day);
        changes.push(pull(
            n,
            if day % 2 == 0 { "alice" } else { "bob" },
            created,
            Some(created + Duration::hours(day)),
        ));
        if day % 2 == 0 {
            changes.push(review(n, 100 + day, "carol", created + Duration::hours(2 * day)));
        }
        changes.push(job(day + 1, created, 10 * day));
    }
    // A successful deployment on days 3, 10 and 15.
    for (id, day) in [(1i64, 3i64), (2, 10), (3, 15)] {
        let at = mon(24 * day + 3);
        changes.push(common::changes::deployment(repo("acme/api"), id, "production", at));
        changes.push(common::changes::deployment_status(repo("acme/api"), id, id * 10, "success", None, at));
    }
    // Open and unreviewed: the stale list's and the slowest list's "still waiting".
    changes.push(pull(99, "dave", mon(-24 * 10), None));
    app.store.apply_changes(&changes).await.unwrap();
    app
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn each_bucket_of_a_series_has_the_figures_of_its_own_window() {
    let app = app().await;
    // A window with partial weeks at both ends: Wednesday of week 10 to Thursday of week 12.
    let (since, until) = ("2026-03-04T00:00:00Z", "2026-03-19T00:00:00Z");
    for metric in ["pulls", "ci", "dora"] {
        for interval in ["week", "day"] {
            let body =
                ok(&app, &format!("/api/metrics/{metric}?since={since}&until={until}&interval={interval}")).await;
            assert_eq!(body["interval"], interval);
            let series = body["groups"][0]["series"].as_array().unwrap_or_else(|| panic!("{metric}: {body}")).clone();
            // THEN every bucket overlapping the window is there, oldest first…
            let want = if interval == "week" { 3 } else { 15 };
            assert_eq!(series.len(), want, "{metric} by {interval}");
            assert_eq!(series[0]["bucket"]["window"]["since"], "2026-03-04T00:00:00Z");
            assert_eq!(series[0]["bucket"]["start"], if interval == "week" { "2026-03-02" } else { "2026-03-04" });
            // …and each carries what a request for its window answers.
            for b in &series {
                let w = &b["bucket"]["window"];
                let (s, u) = (w["since"].as_str().unwrap(), w["until"].as_str().unwrap());
                let alone = ok(&app, &format!("/api/metrics/{metric}?since={s}&until={u}")).await;
                let g = &alone["groups"][0];
                let f = &b["figures"];
                match metric {
                    "pulls" => {
                        for k in [
                            "merged",
                            "cycle_time_seconds",
                            "time_to_first_review_seconds",
                            "unreviewed",
                            "review_rounds",
                            "size_lines",
                        ] {
                            assert_eq!(f[k], g[k], "{metric} {interval} {s}: {k}");
                        }
                    }
                    "ci" => {
                        assert_eq!(f["jobs"], g["jobs"], "{metric} {interval} {s}");
                        assert_eq!(f["runs"], g["runs"], "{metric} {interval} {s}");
                    }
                    _ if g.is_null() => {
                        // Nothing deployed or merged then: a bucket of zeros.
                        assert_eq!(
                            (f["deployments"].as_u64(), f["lead_time_seconds"]["count"].as_u64()),
                            (Some(0), Some(0))
                        );
                    }
                    _ => {
                        for k in ["deployments", "successful", "change_failure_rate", "lead_time_seconds", "undeployed"]
                        {
                            assert_eq!(f[k], g[k], "{metric} {interval} {s}: {k}");
                        }
                    }
                }
            }
        }
    }
    // AND the weekly pull request counts are the hand-computed ones: days 2-6
    // merge in week 10 (day 6 at 15:00 on Sunday), days 7-13 in week 11 (day
    // 13 at 22:00 on Sunday), days 14-15 before Thursday of week 12 (day 16 merges after it)
    let body = ok(&app, &format!("/api/metrics/pulls?since={since}&until={until}&interval=week")).await;
    let merged: Vec<u64> = body["groups"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["figures"]["merged"].as_u64().unwrap())
        .collect();
    assert_eq!(merged, vec![5, 7, 2]);
    let total: u64 = merged.iter().sum();
    assert_eq!(body["groups"][0]["merged"], total);
}

#[tokio::test]
async fn the_previous_period_is_the_window_of_the_same_length_before() {
    let app = app().await;
    // Week 12 against week 11.
    let body = ok(&app, "/api/metrics/pulls?since=2026-03-16&until=2026-03-23&compare=previous").await;
    assert_eq!(body["previous_window"]["since"], "2026-03-09T00:00:00Z");
    assert_eq!(body["previous_window"]["until"], "2026-03-16T00:00:00Z");
    let before = ok(&app, "/api/metrics/pulls?since=2026-03-09&until=2026-03-16").await;
    let (p, b) = (&body["groups"][0]["previous"], &before["groups"][0]);
    for k in ["merged", "cycle_time_seconds", "time_to_first_review_seconds", "unreviewed"] {
        assert_eq!(p[k], b[k], "{k}");
    }
    assert_eq!(p["merged"], 7);
    // CI and DORA too; without compare, no such fields
    let ci = ok(&app, "/api/metrics/ci?since=2026-03-16&until=2026-03-23&compare=previous").await;
    assert_eq!(ci["groups"][0]["previous"]["jobs"]["count"], 7);
    let plain = ok(&app, "/api/metrics/ci?since=2026-03-16&until=2026-03-23").await;
    assert!(plain.get("previous_window").is_none() && plain["groups"][0].get("previous").is_none());
    assert!(plain["groups"][0].get("series").is_none());
}

#[tokio::test]
async fn slowest_first_reviews_and_stale_come_from_the_server() {
    let app = app().await;
    let body = ok(&app, "/api/metrics/pulls?since=2026-03-02&until=2026-03-23&top=3").await;
    let slowest = body["slowest_first_reviews"].as_array().unwrap();
    // Reviewed pull requests waited 2 × day hours: days 20, 18, 16 are the slowest.
    let got: Vec<(u64, i64, bool)> = slowest
        .iter()
        .map(|p| (p["number"].as_u64().unwrap(), p["seconds"].as_i64().unwrap(), p["waiting"].as_bool().unwrap()))
        .collect();
    assert_eq!(got, vec![(21, 40 * 3600, false), (19, 36 * 3600, false), (17, 32 * 3600, false)]);
    // The open one was created before the window: stale, not in the slowest list.
    let stale = body["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0]["number"].as_u64(), stale[0]["waiting"].as_bool()), (Some(99), Some(true)));
    // Opened 10 days before Monday 09:00 of week 10; aged at `until`, three weeks after that Monday's midnight.
    assert_eq!(stale[0]["seconds"], 31 * 86_400 - 9 * 3600);
    // Without top: no lists
    let plain = ok(&app, "/api/metrics/pulls?since=2026-03-02&until=2026-03-23").await;
    assert!(plain.get("stale").is_none() && plain.get("slowest_first_reviews").is_none());
}

#[tokio::test]
async fn bad_series_parameters_are_400() {
    let app = app().await;
    for q in ["interval=month", "compare=next", "top=0", "top=101", "top=x"] {
        let (status, body) = app.get(&format!("/api/metrics/pulls?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, _) = app.get("/api/metrics/ci?top=3").await;
    assert_eq!(status, 400, "top is for pull requests only");
}

//! Metrics API latency over a generated org on SQLite: 100,000 pull requests
//! with 400,000 reviews, teams, 250,000 workflow runs with 1,000,000 jobs,
//! deployments, over two years, written into a temporary store through
//! `Store::apply_changes` in one transaction (the store's own write path:
//! review facts, triggers, and one rollup recomputation of every week at its
//! commit), then every endpoint × filter (none, repo, team, author) × window
//! (7 days, 90 days, 2 years), the series and the groupings asked through the
//! real Router; prints p50 / p99 / max per request.
//!
//! `cargo bench -p octoscope-core --bench metrics` (release; the full size).
//! Under `cargo test` (no `--bench`) it runs a small smoke size instead.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use octoscope::domain::*;
use octoscope::ports::MetricsFilter;
use octoscope::ports::store::*;
use tower::ServiceExt;

#[path = "../tests/common/changes.rs"]
mod changes;

#[path = "../tests/common/bench.rs"]
mod bench;
use bench::percentile;
#[path = "../tests/common/rng.rs"]
mod rng;
use rng::Rng;

struct Size {
    pulls: u64,
    /// Reviews per pull request: 0 to 2 × this − 2, this − 1 on average.
    reviews: u64,
    runs: u64,
    jobs_per_run: i64,
    deployments: u64,
    requests: usize,
}

const REPOS: u64 = 20;
const AUTHORS: u64 = 200;
const TEAMS: u64 = 10;
const DAYS: i64 = 730;

fn end() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn repo(i: u64) -> RepoName {
    RepoName::parse(&format!("acme/service-{i:02}")).unwrap()
}

fn generate(size: &Size) -> Vec<Change> {
    let mut rng = Rng(42);
    let start = end() - TimeDelta::days(DAYS);
    let span = (DAYS * 86_400) as u64;
    let mut out = Vec::new();
    for a in 0..AUTHORS {
        out.push(Change::TeamMember {
            org: "acme".into(),
            team_slug: format!("team-{}", a % TEAMS),
            member: Membership { login: format!("dev{a:03}"), role: None, present: true, version: start },
        });
    }
    let mut review_id = 0;
    for n in 0..size.pulls {
        let created = start + TimeDelta::seconds(rng.below(span) as i64);
        let author = rng.below(AUTHORS);
        let r = repo(n % REPOS);
        let number = n / REPOS + 1;
        let roll = rng.below(100);
        let done = created + TimeDelta::seconds(600 + rng.below(10 * 86_400) as i64);
        let (state, merged_at, closed_at) = match roll {
            0..85 if done < end() => (PrState::Merged, Some(done), Some(done)),
            85..95 if done < end() => (PrState::Closed, None, Some(done)),
            _ => (PrState::Open, None, None),
        };
        let mut at = created;
        for _ in 0..rng.below(2 * size.reviews - 1) {
            at += TimeDelta::seconds(60 + rng.below(86_400) as i64);
            review_id += 1;
            let state = match rng.below(10) {
                0..3 => ReviewState::ChangesRequested,
                3..7 => ReviewState::Approved,
                _ => ReviewState::Commented,
            };
            out.push(Change::Review(Review {
                repo: r.clone(),
                pr_number: number,
                id: review_id,
                author: Some(format!("dev{:03}", rng.below(AUTHORS))),
                state,
                submitted_at: Some(at),
                commit_id: None,
                body: None,
            }));
        }
        out.push(Change::pull_request(PullRequest {
            repo: r,
            number,
            id: Some(n as i64),
            title: format!("Change {n}"),
            state,
            draft: false,
            author: Some(format!("dev{author:03}")),
            created_at: created,
            updated_at: closed_at.unwrap_or(created),
            closed_at,
            merged_at,
            additions: Some(rng.below(800) as i64),
            deletions: Some(rng.below(300) as i64),
            changed_files: Some(1 + rng.below(30) as i64),
            commits: Some(1 + rng.below(10) as i64),
            labels: vec![],
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: Some(format!("change-{n}")),
            head_sha: None,
            body: None,
        }));
    }
    let runners: [(&[&str], &str); 3] =
        [(&["ubuntu-latest"], "linux"), (&["macos-14"], "macos"), (&["self-hosted", "linux", "x64"], "linux")];
    for id in 0..size.runs as i64 {
        let created = start + TimeDelta::seconds(rng.below(span) as i64);
        let started = created + TimeDelta::seconds(rng.below(120) as i64);
        let updated = started + TimeDelta::seconds(60 + rng.below(1_800) as i64);
        let r = repo(id as u64 % REPOS);
        let workflow = ["CI", "Lint", "Release"][rng.below(3) as usize];
        let branch = if rng.chance(60) { "main".to_owned() } else { format!("change-{}", rng.below(1000)) };
        let conclusion = if rng.chance(12) { "failure" } else { "success" };
        out.push(Change::WorkflowRun(WorkflowRun {
            repo: r.clone(),
            id,
            name: Some(workflow.into()),
            workflow_id: Some(1),
            head_branch: Some(branch.clone()),
            head_sha: None,
            event: Some("push".into()),
            status: RunStatus::Completed,
            conclusion: Some(conclusion.into()),
            run_number: Some(id),
            run_attempt: Some(1),
            actor: Some(format!("dev{:03}", rng.below(AUTHORS))),
            created_at: created,
            run_started_at: Some(started),
            updated_at: updated,
        }));
        for j in 0..size.jobs_per_run {
            let (labels, os) = runners[rng.below(3) as usize];
            let job_created = started + TimeDelta::seconds(j);
            let job_started = job_created + TimeDelta::seconds(rng.below(300) as i64);
            out.push(Change::WorkflowJob(WorkflowJob {
                repo: r.clone(),
                id: id * size.jobs_per_run + j,
                run_id: id,
                name: format!("job {j}"),
                workflow_name: Some(workflow.into()),
                head_branch: Some(branch.clone()),
                status: RunStatus::Completed,
                conclusion: Some(conclusion.into()),
                labels: labels.iter().map(|l| l.to_string()).collect(),
                runner_name: None,
                runner_group: None,
                os: Some(os.into()),
                created_at: Some(job_created),
                started_at: Some(job_started),
                completed_at: Some(job_started + TimeDelta::seconds(30 + rng.below(900) as i64)),
            }));
        }
    }
    for id in 0..size.deployments as i64 {
        let created = start + TimeDelta::seconds(rng.below(span) as i64);
        let r = repo(id as u64 % REPOS);
        let env = if rng.chance(70) { "production" } else { "staging" };
        out.push(changes::deployment(r.clone(), id, env, created));
        let state = if rng.chance(10) { "failure" } else { "success" };
        let status_at = created + TimeDelta::seconds(120);
        out.push(changes::deployment_status(r, id, id * 10, state, Some(env), status_at));
    }
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let size = if full {
        Size { pulls: 100_000, reviews: 5, runs: 250_000, jobs_per_run: 4, deployments: 5_000, requests: 100 }
    } else {
        Size { pulls: 2_000, reviews: 2, runs: 500, jobs_per_run: 2, deployments: 100, requests: 3 }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(size));
}

async fn run(size: Size) {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive, reuse) = bench::open(&tmp);
    if !reuse {
        let t = Instant::now();
        let changes = generate(&size);
        let reviews = changes.iter().filter(|c| matches!(c, Change::Review(_))).count();
        // One transaction: the rollups of every week are recomputed once, at its commit.
        store.apply_changes(&changes).await.unwrap();
        println!(
            "generated {} pull requests ({} reviews), {} runs ({} jobs), {} deployments: {} changes in {:.1} s",
            size.pulls,
            reviews,
            size.runs,
            size.runs * size.jobs_per_run as u64,
            size.deployments,
            changes.len(),
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        store.rebuild_rollups().await.unwrap();
        println!("rebuild_rollups (every cell from the rows): {:.1} s", t.elapsed().as_secs_f64());
    }
    // The store's reads alone (what the service then computes over), 90 days.
    let filter = MetricsFilter::window(end() - TimeDelta::days(90), end());
    println!("{:<62} {:>9} {:>9}", "store read, last 90 days", "rows", "p50 ms");
    for name in ["metric_pulls", "metric_runs", "metric_jobs", "metric_deployments"] {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..size.requests.min(20) + 2 {
            let t = Instant::now();
            rows = match name {
                "metric_pulls" => store.metric_pulls(&filter).await.unwrap().len(),
                "metric_runs" => store.metric_runs(&filter).await.unwrap().len(),
                "metric_jobs" => store.metric_jobs(&filter).await.unwrap().len(),
                _ => store.metric_deployments(&filter).await.unwrap().len(),
            };
            times.push(t.elapsed());
        }
        times.sort();
        println!("{:<62} {:>9} {:>9.2}", name, rows, percentile(&times, 50).as_secs_f64() * 1000.0);
    }
    // The write path's rollup upkeep at this scale: one write per transaction,
    // a change no cell uses (a team membership) against a new job and a new pull
    // request (each recomputes its week's cells from the week's rows).
    println!("{:<62} {:>9} {:>9}", "one write, its own transaction", "p50 ms", "max ms");
    let at = end() - TimeDelta::days(30);
    for kind in ["team membership (no cell)", "workflow job (its CI week)", "pull request (its weeks)"] {
        let mut times = Vec::new();
        for i in 0..21u64 {
            let change = match kind {
                "team membership (no cell)" => Change::TeamMember {
                    org: "acme".into(),
                    team_slug: "bench".into(),
                    member: Membership { login: format!("w{i}"), role: None, present: true, version: at },
                },
                "workflow job (its CI week)" => Change::WorkflowJob(WorkflowJob {
                    repo: repo(0),
                    id: 900_000_000 + i as i64,
                    run_id: 1,
                    name: "bench".into(),
                    workflow_name: Some("CI".into()),
                    head_branch: Some("main".into()),
                    status: RunStatus::Completed,
                    conclusion: Some("success".into()),
                    labels: vec!["ubuntu-latest".into()],
                    runner_name: None,
                    runner_group: None,
                    os: Some("linux".into()),
                    created_at: Some(at),
                    started_at: Some(at + TimeDelta::seconds(5)),
                    completed_at: Some(at + TimeDelta::seconds(65)),
                }),
                _ => {
                    let mut c =
                        generate(&Size { pulls: 1, reviews: 1, runs: 0, jobs_per_run: 0, deployments: 0, requests: 0 });
                    match c.pop() {
                        Some(Change::PullRequest { mut pull, known }) => {
                            pull.repo = repo(1);
                            pull.number = 900_000 + i;
                            pull.created_at = at;
                            pull.merged_at = Some(at + TimeDelta::hours(5));
                            pull.state = PrState::Merged;
                            Change::PullRequest { pull, known }
                        }
                        _ => unreachable!("the last change generated is the pull request"),
                    }
                }
            };
            let t = Instant::now();
            store.apply_changes(&[change]).await.unwrap();
            if i > 0 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("{:<62} {:>9.2} {:>9.2}", kind, ms(percentile(&times, 50)), ms(*times.last().unwrap()));
    }
    let router = bench::router(store.clone(), archive);
    // Windows end on a Thursday afternoon, as "the last N days" from now would:
    // whole ISO weeks from rollups, the partial weeks at both edges from rows.
    let until = "2026-10-29T13:00:00Z";
    let windows = [("7d", "2026-10-22T13:00:00Z"), ("90d", "2026-07-31T13:00:00Z"), ("2y", "2024-10-29T13:00:00Z")];
    let filters = ["", "&repo=acme/service-07", "&team=acme/team-3", "&author=dev042"];
    let mut endpoints = Vec::new();
    for metric in ["pulls", "ci", "dora"] {
        for (_, since) in windows {
            for f in filters {
                endpoints.push(format!("/api/metrics/{metric}?since={since}&until={until}{f}"));
            }
        }
    }
    let (since90, since2y) = (windows[1].1, windows[2].1);
    for metric in ["pulls", "ci", "dora"] {
        endpoints.push(format!("/api/metrics/{metric}?since={since2y}&until={until}&interval=week"));
        endpoints.push(format!("/api/metrics/{metric}?since={since2y}&until={until}&interval=week&compare=previous"));
        endpoints.push(format!("/api/metrics/{metric}?since={since90}&until={until}&interval=day"));
    }
    for g in ["repo", "team", "author"] {
        endpoints.push(format!("/api/metrics/pulls?since={since2y}&until={until}&group_by={g}"));
        endpoints.push(format!("/api/metrics/ci?since={since2y}&until={until}&group_by={g}"));
    }
    endpoints.push(format!("/api/metrics/dora?since={since2y}&until={until}&group_by=repo"));
    endpoints.push(format!("/api/metrics/pulls?since={since90}&until={until}&top=10"));
    endpoints.push(format!("/api/metrics/ci?since={since90}&until={until}&group_by=runner"));
    endpoints.push("/api/metrics/health".to_owned());
    // OCTOSCOPE_BENCH_ONLY=TEXT asks only the endpoints whose path contains TEXT (to profile one).
    if let Ok(only) = std::env::var("OCTOSCOPE_BENCH_ONLY") {
        endpoints.retain(|p| p.contains(&only));
    }
    println!("{:<110} {:>9} {:>9} {:>9}", "endpoint", "p50 ms", "p99 ms", "max ms");
    for path in &endpoints {
        let mut times = Vec::with_capacity(size.requests);
        for i in 0..size.requests + 5 {
            let t = Instant::now();
            let resp = router.clone().oneshot(Request::get(path.as_str()).body(Body::empty()).unwrap()).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&body));
            if i >= 5 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<110} {:>9.2} {:>9.2} {:>9.2}",
            path,
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(*times.last().unwrap())
        );
    }
}

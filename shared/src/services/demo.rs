//! `octoscope demo`: a generated, realistic organisation — months of pull
//! requests with reviews, teams, CI runs and jobs, deployments — delivered as
//! signed GitHub-shaped webhooks through the real ingest path, so a newcomer
//! sees a full dashboard in seconds. Deterministic for a seed; delivery ids are
//! fixed, so loading it twice has no second effect.

use chrono::{Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use serde_json::{Value, json};

use super::ingest::{IngestError, IngestService, Ingested, WebhookRequest};
use crate::domain::Timestamp;
use crate::webhook::sign;

/// The secret demo deliveries are signed with (they never leave the process).
pub const DEMO_SECRET: &str = "octoscope-demo-secret";
pub const DEMO_ORG: &str = "acme-demo";
const REPOS: &[&str] = &["web", "api", "mobile", "infra"];
const DEVS: &[&str] =
    &["ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances", "alan", "radia", "guido", "anita"];
/// (team, members by index into DEVS, repositories the team works on).
const TEAMS: &[(&str, &[usize], &[usize])] = &[
    ("frontend", &[0, 1, 2, 3], &[0, 2]),
    ("backend", &[4, 5, 6, 7], &[1, 3]),
    ("platform", &[8, 9, 10, 11], &[3, 1]),
];
const DAYS: i64 = 120;

/// One generated delivery.
#[derive(Debug, Clone)]
pub struct DemoDelivery {
    pub event: &'static str,
    pub at: Timestamp,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoReport {
    pub deliveries: usize,
    pub stored: usize,
    pub duplicates: usize,
}

fn ts(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn sha(rng: &mut fastrand::Rng) -> String {
    format!("{:016x}{:016x}{:08x}", rng.u64(..), rng.u64(..), rng.u32(..))
}

fn user(login: &str) -> Value {
    json!({ "login": login, "type": "User" })
}

struct Gen {
    rng: fastrand::Rng,
    out: Vec<DemoDelivery>,
    ids: i64,
}

impl Gen {
    fn id(&mut self) -> i64 {
        self.ids += 1;
        self.ids
    }

    fn emit(&mut self, event: &'static str, at: Timestamp, body: Value) {
        self.out.push(DemoDelivery { event, at, body: serde_json::to_vec(&body).expect("json serialises") });
    }
}

fn repository(repo: &str, updated: Timestamp) -> Value {
    json!({
        "id": 900_000 + REPOS.iter().position(|r| *r == repo).unwrap_or(0),
        "name": repo,
        "full_name": format!("{DEMO_ORG}/{repo}"),
        "owner": { "login": DEMO_ORG, "type": "Organization" },
        "private": true,
        "archived": false,
        "default_branch": "main",
        "created_at": "2023-01-10T09:00:00Z",
        "updated_at": ts(updated),
        "pushed_at": ts(updated),
    })
}

/// A working-hours time `hours` after `from` (weekends skipped).
fn later(from: Timestamp, hours: f64) -> Timestamp {
    let mut t = from + Duration::seconds((hours * 3600.0) as i64);
    while matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
        t += Duration::days(1);
    }
    t
}

/// Generate the organisation's history, oldest first, ending at `now`.
pub fn generate(now: Timestamp, seed: u64) -> Vec<DemoDelivery> {
    let mut g = Gen { rng: fastrand::Rng::with_seed(seed), out: Vec::new(), ids: 5_000_000 };
    let start =
        Utc.from_utc_datetime(&(now - Duration::days(DAYS)).date_naive().and_hms_opt(9, 0, 0).expect("valid time"));
    let org = json!({ "login": DEMO_ORG });

    for (slug, members, _) in TEAMS {
        let team = json!({ "id": g.id(), "slug": slug, "name": slug, "privacy": "closed", "description": format!("The {slug} team") });
        g.emit("team", start, json!({ "action": "created", "team": team, "organization": org }));
        for m in *members {
            let body = json!({ "action": "added", "scope": "team", "member": user(DEVS[*m]), "team": team, "organization": org });
            g.emit("membership", start + Duration::minutes(1), body);
        }
    }

    let mut deploy_queue: Vec<(usize, Timestamp, String)> = Vec::new();
    let mut number = [0u64; 4];
    for day in 0..DAYS {
        let date = start + Duration::days(day);
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        for (team_i, (_, members, repos)) in TEAMS.iter().enumerate() {
            // Each team opens one to three pull requests a working day.
            for _ in 0..g.rng.usize(1..=3) {
                let repo_i = repos[g.rng.usize(..repos.len())];
                let repo = REPOS[repo_i];
                let author = DEVS[members[g.rng.usize(..members.len())]];
                number[repo_i] += 1;
                let n = number[repo_i];
                let created = date + Duration::minutes(g.rng.i64(0..8 * 60));
                if created > now {
                    continue;
                }
                let lines = (g.rng.f64().powi(3) * 1500.0) as i64 + 5;
                let head = sha(&mut g.rng);
                let pr_id = g.id();
                let title = format!(
                    "{} {}",
                    ["Add", "Fix", "Refactor", "Speed up", "Document", "Remove"][g.rng.usize(..6)],
                    [
                        "login flow",
                        "billing export",
                        "search index",
                        "rate limiter",
                        "cache layer",
                        "settings page",
                        "deploy script"
                    ][g.rng.usize(..7)]
                );
                let roll = g.rng.f64();
                let (merged_at, closed_at) = if roll < 0.80 {
                    let m = later(created, 2.0 + g.rng.f64().powi(2) * 140.0 + team_i as f64 * 6.0);
                    (Some(m), Some(m))
                } else if roll < 0.88 {
                    let c = later(created, 24.0 + g.rng.f64() * 200.0);
                    (None, Some(c))
                } else {
                    (None, None)
                };
                let merged_at = merged_at.filter(|t| *t <= now);
                let closed_at = closed_at.filter(|t| *t <= now);
                let reviewers: Vec<&str> =
                    members.iter().map(|m| DEVS[*m]).filter(|d| *d != author).take(g.rng.usize(1..=2)).collect();
                let label = ["bug", "enhancement", "dependencies"][(n % 3) as usize];
                let pr = |state: &str, updated: Timestamp, merged: Option<Timestamp>, closed: Option<Timestamp>| {
                    json!({
                        "id": pr_id, "number": n, "title": title, "state": state, "draft": false,
                        "user": user(author), "created_at": ts(created), "updated_at": ts(updated),
                        "closed_at": closed.map(ts), "merged_at": merged.map(ts), "merged": merged.is_some(),
                        "additions": lines * 2 / 3, "deletions": lines / 3, "changed_files": 1 + lines / 80,
                        "commits": 1 + lines / 200,
                        "labels": [{ "name": label }],
                        "requested_reviewers": reviewers.iter().map(|r| user(r)).collect::<Vec<_>>(),
                        "requested_teams": [],
                        "base": { "ref": "main", "sha": "0000000000000000000000000000000000000000" },
                        "head": { "ref": format!("{author}/change-{n}"), "sha": head },
                    })
                };
                let repo_at = |t: Timestamp| repository(repo, t);
                g.emit("pull_request", created, json!({ "action": "opened", "number": n, "pull_request": pr("open", created, None, None), "repository": repo_at(created), "organization": org, "sender": user(author) }));

                // Reviews: the first some hours in; changes requested sometimes, then approval.
                let end = closed_at.unwrap_or(now);
                let mut at = later(created, 0.5 + g.rng.f64().powi(2) * 30.0 + team_i as f64 * 3.0);
                for (i, reviewer) in reviewers.iter().enumerate() {
                    if at >= end {
                        break;
                    }
                    let state = if i == 0 && g.rng.f64() < 0.3 { "changes_requested" } else { "approved" };
                    let review = json!({ "id": g.id(), "user": user(reviewer), "state": state, "submitted_at": ts(at), "commit_id": head });
                    g.emit("pull_request_review", at, json!({ "action": "submitted", "review": review, "pull_request": pr("open", at, None, None), "repository": repo_at(at), "organization": org }));
                    at = later(at, 1.0 + g.rng.f64() * 20.0);
                }

                // CI on the pull request.
                ci_run(
                    &mut g,
                    repo,
                    &format!("{author}/change-{n}"),
                    &head,
                    later(created, 0.05),
                    "pull_request",
                    author,
                );

                if let Some(closed) = closed_at {
                    let state = "closed";
                    g.emit("pull_request", closed, json!({ "action": "closed", "number": n, "pull_request": pr(state, closed, merged_at, Some(closed)), "repository": repo_at(closed), "organization": org }));
                }
                if let Some(merged) = merged_at {
                    let main_sha = sha(&mut g.rng);
                    let push = json!({
                        "ref": "refs/heads/main", "after": main_sha, "deleted": false,
                        "commits": [{ "id": main_sha, "message": title, "timestamp": ts(merged), "author": { "name": author, "username": author } }],
                        "repository": { "full_name": format!("{DEMO_ORG}/{repo}"), "owner": { "login": DEMO_ORG, "type": "Organization" }, "default_branch": "main", "pushed_at": merged.timestamp(), "updated_at": ts(merged) },
                        "organization": org,
                    });
                    g.emit("push", merged, push);
                    ci_run(&mut g, repo, "main", &main_sha, later(merged, 0.02), "push", author);
                    if repo_i != 3 {
                        deploy_queue.push((repo_i, merged, main_sha));
                    }
                }
            }
        }
        // Deploys: staging after each day's merges, production most days at 16:00.
        let cutoff = date + Duration::hours(7);
        let (due, rest): (Vec<_>, Vec<_>) = deploy_queue.into_iter().partition(|(_, t, _)| *t <= cutoff);
        deploy_queue = rest;
        let mut last: Vec<Option<String>> = vec![None; REPOS.len()];
        for (repo_i, _, main_sha) in due {
            last[repo_i] = Some(main_sha);
        }
        for (repo_i, main_sha) in last.into_iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))) {
            for (env, hour) in [("staging", 12), ("production", 16)] {
                if env == "production" && g.rng.f64() < 0.25 {
                    continue;
                }
                let at = date.with_hour(hour).unwrap_or(date) + Duration::minutes(g.rng.i64(0..50));
                if at > now {
                    continue;
                }
                deployment(&mut g, REPOS[repo_i], env, &main_sha, at);
            }
        }
    }
    g.out.sort_by_key(|d| d.at);
    g.out
}

/// A workflow run and its jobs as GitHub delivers them: the run's `requested`,
/// `in_progress` and `completed`, each job's `queued`, `in_progress` and
/// `completed` (a queued job's `started_at` is its creation, as GitHub sends
/// it; its runner is not yet named).
fn ci_run(g: &mut Gen, repo: &str, branch: &str, head: &str, created: Timestamp, event: &str, actor: &str) {
    let run_id = g.id();
    let queue = 5 + (g.rng.f64().powi(3) * 400.0) as i64;
    let started = created + Duration::seconds(queue);
    let minutes = 2.0 + g.rng.f64().powi(2) * 25.0 + if repo == "mobile" { 10.0 } else { 0.0 };
    let done = started + Duration::seconds((minutes * 60.0) as i64);
    let failed = g.rng.f64() < if repo == "mobile" { 0.2 } else { 0.08 };
    let conclusion = if failed { "failure" } else { "success" };
    let workflow = if event == "push" { "Release" } else { "CI" };
    let run = |status: &str, conclusion: Option<&str>, updated: Timestamp| {
        json!({
            "id": run_id, "name": workflow, "workflow_id": if event == "push" { 2 } else { 1 }, "head_branch": branch,
            "head_sha": head, "event": event, "status": status, "conclusion": conclusion,
            "run_number": run_id % 10_000, "run_attempt": 1, "actor": user(actor),
            "created_at": ts(created), "updated_at": ts(updated), "run_started_at": ts(started),
        })
    };
    for (action, status, conclusion, at) in [
        ("requested", "queued", None, created),
        ("in_progress", "in_progress", None, started),
        ("completed", "completed", Some(conclusion), done),
    ] {
        let body = json!({ "action": action, "workflow_run": run(status, conclusion, at), "repository": repository(repo, at) });
        g.emit("workflow_run", at, body);
    }
    let runners: &[&str] =
        if repo == "mobile" { &["macos-latest", "ubuntu-latest"] } else { &["ubuntu-latest", "self-hosted-linux"] };
    for (i, label) in runners.iter().enumerate() {
        let job_queue = 3 + (g.rng.f64().powi(3) * if label.starts_with("self") { 900.0 } else { 120.0 }) as i64;
        let job_start = created + Duration::seconds(job_queue);
        let job_name = ["build", "test"][i % 2];
        let job_id = g.id();
        let runner = format!("{label}-{}", i + 1);
        let job = |status: &str, conclusion: Option<&str>, started: Timestamp, completed: Option<Timestamp>| {
            let runner = (status != "queued").then_some(runner.as_str());
            json!({
                "id": job_id, "run_id": run_id, "name": job_name, "workflow_name": workflow,
                "head_branch": branch, "status": status, "conclusion": conclusion,
                "labels": [label], "runner_name": runner, "runner_group_name": runner.map(|_| "Default"),
                "created_at": ts(created), "started_at": ts(started), "completed_at": completed.map(ts),
            })
        };
        let job_conclusion = if failed && i == 1 { "failure" } else { "success" };
        for (action, body, at) in [
            ("queued", job("queued", None, created, None), created),
            ("in_progress", job("in_progress", None, job_start, None), job_start),
            ("completed", job("completed", Some(job_conclusion), job_start, Some(done)), done),
        ] {
            g.emit(
                "workflow_job",
                at,
                json!({ "action": action, "workflow_job": body, "repository": repository(repo, at) }),
            );
        }
    }
}

fn deployment(g: &mut Gen, repo: &str, env: &str, main_sha: &str, at: Timestamp) {
    let dep = json!({
        "id": g.id(), "sha": main_sha, "ref": "main", "environment": env, "task": "deploy",
        "creator": user("deploy-bot"), "created_at": ts(at), "updated_at": ts(at),
    });
    g.emit("deployment", at, json!({ "action": "created", "deployment": dep, "repository": repository(repo, at) }));
    let done = at + Duration::minutes(3 + g.rng.i64(0..10));
    let state = if g.rng.f64() < 0.08 { "failure" } else { "success" };
    let status = json!({ "id": g.id(), "state": state, "environment": env, "creator": user("deploy-bot"), "created_at": ts(done), "updated_at": ts(done) });
    g.emit("deployment_status", done, json!({ "action": "created", "deployment_status": status, "deployment": dep, "repository": repository(repo, done) }));
}

/// Deliver `deliveries` through `ingest` (built with [`DEMO_SECRET`]), signed,
/// with fixed delivery ids: a second load is all duplicates.
pub async fn load(ingest: &IngestService, deliveries: &[DemoDelivery]) -> Result<DemoReport, IngestError> {
    let mut report = DemoReport::default();
    for (i, d) in deliveries.iter().enumerate() {
        let signature = sign(DEMO_SECRET, &d.body);
        let delivery = format!("demo-{i:06}");
        let outcome = ingest
            .ingest(WebhookRequest {
                event: Some(d.event),
                delivery: Some(&delivery),
                hook_id: Some("demo"),
                signature: Some(signature.as_bytes()),
                content_type: Some("application/json"),
                body: &d.body,
            })
            .await?;
        report.deliveries += 1;
        match outcome {
            Ingested::Stored { .. } => report.stored += 1,
            Ingested::Duplicate(_) => report.duplicates += 1,
            Ingested::Ignored { .. } | Ingested::Failed { .. } => {}
        }
    }
    Ok(report)
}

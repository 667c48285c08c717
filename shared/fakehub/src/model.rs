//! The ground truth: a deterministic organisation generated from a seed and a
//! size, as plain structs a test can compare a store with.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fastrand::Rng;

pub type Time = DateTime<Utc>;

/// The size and shape of the generated organisation.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    pub org: String,
    pub seed: u64,
    pub repos: usize,
    /// Pull requests per repository.
    pub pulls: usize,
    pub teams: usize,
    /// Organisation members (team members are drawn from them).
    pub members: usize,
    /// Branches per repository besides the default branch.
    pub branches: usize,
    /// Workflow runs per repository (each with 1..=4 jobs).
    pub runs: usize,
    /// Deployments per repository (each with 0..=4 statuses).
    pub deployments: usize,
    /// Commits of each repository's default branch (its linear history).
    pub commits: usize,
    /// Reviews per pull request are drawn from 0..=max_reviews.
    pub max_reviews: usize,
    /// Pull requests (the first N of the first repository) that get 150 reviews each,
    /// so that their reviews need more than one page.
    pub pulls_with_many_reviews: usize,
    /// When the organisation's history starts; it spans `days` days.
    pub start: Time,
    pub days: i64,
}

impl Default for OrgSpec {
    fn default() -> Self {
        Self {
            org: "octo-org".into(),
            seed: 1,
            repos: 5,
            pulls: 100,
            teams: 4,
            members: 20,
            branches: 3,
            runs: 10,
            deployments: 6,
            commits: 20,
            max_reviews: 4,
            pulls_with_many_reviews: 0,
            start: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("a valid date"),
            days: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullState {
    Open,
    /// Closed without merging.
    Closed,
    Merged,
}

impl PullState {
    /// GraphQL's `PullRequestState`.
    pub fn graphql(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Closed => "CLOSED",
            Self::Merged => "MERGED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
}

impl ReviewState {
    /// GraphQL's `PullRequestReviewState`.
    pub fn graphql(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::ChangesRequested => "CHANGES_REQUESTED",
            Self::Commented => "COMMENTED",
            Self::Dismissed => "DISMISSED",
        }
    }
    /// The webhook payload's lowercase spelling.
    pub fn webhook(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Commented => "commented",
            Self::Dismissed => "dismissed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub id: i64,
    pub node_id: String,
    pub author: String,
    pub state: ReviewState,
    pub submitted_at: Time,
    pub commit_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pull {
    pub id: i64,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: PullState,
    pub draft: bool,
    pub author: String,
    pub created_at: Time,
    /// The time of the pull request's last event (the newest of its history).
    pub updated_at: Time,
    pub closed_at: Option<Time>,
    pub merged_at: Option<Time>,
    pub additions: i64,
    pub deletions: i64,
    pub changed_files: i64,
    pub commits: i64,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    pub requested_teams: Vec<String>,
    pub base_ref: String,
    pub head_ref: String,
    pub head_sha: String,
    pub reviews: Vec<Review>,
    /// Closed at this time and reopened at `updated`-ish later (history only).
    pub reopened: Option<(Time, Time)>,
    /// An `edited` event at `updated_at` ends its history.
    pub edited_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub name: String,
    pub head_sha: String,
    /// When its head was pushed.
    pub pushed_at: Time,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    pub id: i64,
    /// The GraphQL node id (`WFR_` + the id).
    pub node_id: String,
    pub name: String,
    pub workflow_id: i64,
    pub head_branch: String,
    pub head_sha: String,
    pub event: String,
    /// `completed`, `in_progress` or `queued`.
    pub status: String,
    pub conclusion: Option<String>,
    pub run_number: i64,
    pub run_attempt: i64,
    pub actor: String,
    pub created_at: Time,
    pub run_started_at: Time,
    pub updated_at: Time,
    /// Its jobs (its check runs) of every attempt, oldest first: 1 to 4 per
    /// attempt, the same ones each time. A re-run (`run_attempt` 2) keeps its
    /// first attempt's jobs, completed before `run_started_at`, one failed. A
    /// completed run's jobs are all completed; a queued run's are all queued;
    /// an in-progress run has one in progress.
    pub jobs: Vec<WorkflowJob>,
}

/// One job of a workflow run, as the REST API and `workflow_job` events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowJob {
    pub id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub node_id: String,
    pub name: String,
    pub workflow_name: String,
    pub head_branch: String,
    pub head_sha: String,
    /// `completed`, `in_progress` or `queued`.
    pub status: String,
    pub conclusion: Option<String>,
    /// The `runs-on` labels: `["ubuntu-latest"]`, `["self-hosted", "linux", "x64"]` or `["macos-14"]`.
    pub labels: Vec<String>,
    /// The runner that took it; None while it is queued.
    pub runner_id: Option<i64>,
    pub runner_name: Option<String>,
    pub runner_group_id: Option<i64>,
    pub runner_group_name: Option<String>,
    pub created_at: Time,
    /// When a runner started it; a queued job reports its creation time, as GitHub does.
    /// The queue time is `started_at - created_at`.
    pub started_at: Time,
    pub completed_at: Option<Time>,
}

impl WorkflowJob {
    /// Time spent waiting for a runner (zero while queued).
    pub fn queue_time(&self) -> Duration {
        self.started_at - self.created_at
    }
}

/// A deployment and its statuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: i64,
    pub node_id: String,
    pub sha: String,
    /// The ref deployed (`main`).
    pub git_ref: String,
    /// `production` or `staging`.
    pub environment: String,
    pub task: String,
    pub creator: String,
    pub created_at: Time,
    /// The creation time of its newest status (its own creation without one), as GitHub keeps it.
    pub updated_at: Time,
    /// Oldest first.
    pub statuses: Vec<DeploymentStatus>,
}

impl Deployment {
    /// The newest status.
    pub fn latest_status(&self) -> Option<&DeploymentStatus> {
        self.statuses.last()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    pub id: i64,
    pub node_id: String,
    /// REST's lower case: `queued`, `in_progress`, `success`, `failure`, `error` or `inactive`.
    pub state: String,
    pub environment: String,
    pub creator: String,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A commit of a repository's default branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    /// The author's GitHub login; None for an author GitHub does not know.
    pub author_login: Option<String>,
    pub committed_at: Time,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub created_at: Time,
    /// The newest branch push.
    pub pushed_at: Time,
    pub updated_at: Time,
    /// The default branch first.
    pub branches: Vec<Branch>,
    pub pulls: Vec<Pull>,
    pub runs: Vec<WorkflowRun>,
    /// Oldest first.
    pub deployments: Vec<Deployment>,
    /// The default branch's linear history, oldest first: the newest commit's
    /// sha is the default branch's head.
    pub commits: Vec<Commit>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    pub fn count(&self, state: PullState) -> usize {
        self.pulls.iter().filter(|p| p.state == state).count()
    }
    pub fn newest_pull_update(&self) -> Option<Time> {
        self.pulls.iter().map(|p| p.updated_at).max()
    }
    pub fn run(&self, id: i64) -> Option<&WorkflowRun> {
        self.runs.iter().find(|r| r.id == id)
    }
    pub fn deployment(&self, id: i64) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }
    /// Commits of the default branch committed at or after `since` (all when None).
    pub fn commits_since(&self, since: Option<Time>) -> usize {
        self.commits.iter().filter(|c| since.is_none_or(|s| c.committed_at >= s)).count()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// `closed` (GraphQL `VISIBLE`) or `secret`.
    pub privacy: String,
    /// Current direct members.
    pub members: Vec<String>,
    /// Members added and later removed (history only): (login, added, removed).
    pub former_members: Vec<(String, Time, Time)>,
    /// When each current member was added.
    pub added_at: Vec<Time>,
}

/// The whole organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub login: String,
    pub id: i64,
    pub members: Vec<String>,
    pub repos: Vec<Repo>,
    pub teams: Vec<Team>,
}

impl Org {
    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.full_name() == full_name)
    }
    pub fn team(&self, slug: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.slug == slug)
    }
}

fn sha(rng: &mut Rng) -> String {
    format!("{:016x}{:016x}{:08x}", rng.u64(..), rng.u64(..), rng.u32(..))
}

fn secs(rng: &mut Rng, lo: i64, hi: i64) -> Duration {
    Duration::seconds(rng.i64(lo..=hi))
}

const LABELS: &[&str] = &["bug", "enhancement", "documentation", "dependencies", "ci", "security"];
const WORKFLOWS: &[&str] = &["CI", "Lint", "Release"];
const JOBS: &[&str] = &["build", "test", "lint", "package"];

/// Ids of the things drawn from the second random stream, apart from the first's
/// (and below 2^31, as GraphQL's `Int` wants).
const JOB_IDS: i64 = 300_000_000;
const DEPLOYMENT_IDS: i64 = 400_000_000;
const STATUS_IDS: i64 = 500_000_000;

/// A random stream of its own for one part of the organisation (a run's jobs,
/// a repository's commits or deployments). What was added to the organisation
/// later is drawn from these, so the first stream (and every number drawn from
/// it) stays as it was, and each part stays the same whatever the other parts' sizes.
fn stream(seed: u64, part: u64, key: u64) -> Rng {
    // splitmix64 of the three.
    let mut z = seed ^ part.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.wrapping_mul(0xd6e8_feb8_6659_fd93);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    Rng::with_seed(z ^ (z >> 31))
}

const JOBS_STREAM: u64 = 1;
const COMMITS_STREAM: u64 = 2;
const DEPLOYMENTS_STREAM: u64 = 3;

struct Counters {
    job: i64,
    deployment: i64,
    status: i64,
}

/// Whether a completed run was re-run: a first attempt that failed ran between
/// its creation and `run_started_at` (the start of its latest attempt, as GitHub says).
fn rerun(rng: &mut Rng, run: &WorkflowRun) -> bool {
    run.status == "completed" && (run.run_started_at - run.created_at).num_seconds() >= 20 && rng.u8(..5) == 0
}

/// The jobs of a re-run run's first attempt: all completed before the second
/// attempt started, one of them failed.
fn first_attempt_jobs(rng: &mut Rng, run: &WorkflowRun, n: usize, next: &mut Counters) -> Vec<WorkflowJob> {
    let window = (run.run_started_at - run.created_at).num_seconds();
    let culprit = rng.usize(..n);
    (0..n)
        .map(|k| {
            let created_off = rng.i64(0..=window / 5);
            let start_off = created_off + rng.i64(1..=((window - created_off) / 3).max(1));
            let done_off = rng.i64(start_off + 1..=(window - 1).max(start_off + 1));
            let at = |off: i64| run.created_at + Duration::seconds(off);
            let conclusion = if k == culprit { "failure" } else { "success" };
            let (labels, runner) = runner(rng, true);
            next.job += 1;
            job(
                run,
                next.job,
                1,
                k,
                ("completed", Some(conclusion)),
                labels,
                runner,
                (at(created_off), at(start_off), Some(at(done_off))),
            )
        })
        .collect()
}

fn runner_for(rng: &mut Rng, hosted: bool) -> (i64, String, i64, String) {
    let n = rng.i64(1..=40);
    if hosted {
        (n, format!("GitHub Actions {n}"), 2, "GitHub Actions".to_owned())
    } else {
        (100 + n, format!("runner-{n:02}"), 1, "Default".to_owned())
    }
}

/// `runs-on` labels, and the runner that took the job when `assigned`:
/// (labels, (runner id, name, group id, group name)).
#[allow(clippy::type_complexity)]
fn runner(rng: &mut Rng, assigned: bool) -> (Vec<&'static str>, Option<(i64, String, i64, String)>) {
    let (labels, hosted): (Vec<&str>, bool) = match rng.u8(..10) {
        0..=5 => (vec!["ubuntu-latest"], true),
        6..=8 => (vec!["self-hosted", "linux", "x64"], false),
        _ => (vec!["macos-14"], true),
    };
    let runner = assigned.then(|| runner_for(rng, hosted));
    (labels, runner)
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn job(
    run: &WorkflowRun,
    id: i64,
    attempt: i64,
    k: usize,
    (status, conclusion): (&str, Option<&str>),
    labels: Vec<&str>,
    runner: Option<(i64, String, i64, String)>,
    (created_at, started_at, completed_at): (Time, Time, Option<Time>),
) -> WorkflowJob {
    WorkflowJob {
        id,
        run_id: run.id,
        run_attempt: attempt,
        node_id: format!("CR_{id}"),
        name: JOBS[k % JOBS.len()].to_owned(),
        workflow_name: run.name.clone(),
        head_branch: run.head_branch.clone(),
        head_sha: run.head_sha.clone(),
        status: status.to_owned(),
        conclusion: conclusion.map(str::to_owned),
        labels: labels.into_iter().map(str::to_owned).collect(),
        runner_id: runner.as_ref().map(|r| r.0),
        runner_name: runner.as_ref().map(|r| r.1.clone()),
        runner_group_id: runner.as_ref().map(|r| r.2),
        runner_group_name: runner.map(|r| r.3),
        created_at,
        started_at,
        completed_at,
    }
}

/// The jobs of a run's latest attempt, consistent with its status and times.
fn generate_jobs(rng: &mut Rng, run: &WorkflowRun, n: usize, next: &mut Counters) -> Vec<WorkflowJob> {
    let window = (run.updated_at - run.run_started_at).num_seconds().max(30);
    // A failed or cancelled run has one job that failed or was cancelled.
    let culprit = rng.usize(..n);
    let mut jobs = Vec::with_capacity(n);
    for k in 0..n {
        let (labels, _) = runner(rng, false);
        let hosted = labels[0] != "self-hosted";
        // GitHub-hosted runners come in seconds; self-hosted ones may take minutes.
        let max_queue = if hosted { 90 } else { 900 };
        let (status, conclusion, created, started, completed) = match run.status.as_str() {
            "completed" => {
                let created_off = rng.i64(0..=window / 5);
                let queue = rng.i64(1..=((window - created_off) / 3).clamp(1, max_queue));
                let start_off = created_off + queue;
                // The last job finishes the run.
                let done_off = if k + 1 == n { window } else { rng.i64(start_off + 1..=window) };
                let conclusion = match run.conclusion.as_deref() {
                    Some(c @ ("failure" | "cancelled")) if k == culprit => c,
                    _ => "success",
                };
                let at = |off: i64| run.run_started_at + Duration::seconds(off);
                ("completed", Some(conclusion), at(created_off), at(start_off), Some(at(done_off)))
            }
            "in_progress" => {
                let created = run.run_started_at + secs(rng, 0, 30);
                let state = if k == 0 { 1 } else { rng.u8(..3) };
                match state {
                    0 => ("queued", None, created, created, None),
                    1 => ("in_progress", None, created, created + secs(rng, 1, max_queue), None),
                    _ => {
                        let started = created + secs(rng, 1, max_queue);
                        ("completed", Some("success"), created, started, Some(started + secs(rng, 30, 600)))
                    }
                }
            }
            _ => ("queued", None, run.created_at, run.created_at, None),
        };
        let runner = (status != "queued").then(|| runner_for(rng, hosted));
        next.job += 1;
        jobs.push(job(
            run,
            next.job,
            run.run_attempt,
            k,
            (status, conclusion),
            labels,
            runner,
            (created, started, completed),
        ));
    }
    jobs
}

/// The default branch's history: `n` commits from `from` to `head_at`, the newest being `head_sha`.
fn generate_commits(
    rng: &mut Rng,
    members: &[String],
    repo: &str,
    n: usize,
    (from, head_at): (Time, Time),
    head_sha: &str,
) -> Vec<Commit> {
    if n == 0 {
        return Vec::new();
    }
    let span = (head_at - from).num_seconds().max(0);
    let mut times: Vec<Time> = (1..n).map(|_| from + secs(rng, 0, span)).collect();
    times.sort();
    times.push(head_at);
    times
        .into_iter()
        .enumerate()
        .map(|(i, committed_at)| {
            let login = &members[rng.usize(..members.len())];
            // Now and then an author whose email GitHub does not know.
            let known = rng.u8(..10) != 0;
            Commit {
                sha: if i + 1 == n { head_sha.to_owned() } else { sha(rng) },
                message: format!("Change {} of {repo}\n\nWhat it changes and why.", i + 1),
                author_name: if known { format!("Developer {login}") } else { format!("Guest {}", i + 1) },
                author_login: known.then(|| login.clone()),
                committed_at,
            }
        })
        .collect()
}

fn generate_deployments(
    rng: &mut Rng,
    members: &[String],
    commits: &[Commit],
    fallback_sha: &str,
    n: usize,
    (start, span): (Time, i64),
    next: &mut Counters,
) -> Vec<Deployment> {
    let mut created: Vec<Time> = (0..n).map(|_| start + secs(rng, 0, span)).collect();
    created.sort();
    created
        .into_iter()
        .map(|created_at| {
            next.deployment += 1;
            let id = next.deployment;
            let environment = if rng.u8(..3) == 0 { "staging" } else { "production" };
            let creator = members[rng.usize(..members.len())].clone();
            // The newest commit of the default branch at the time, else its head.
            let sha = commits
                .iter()
                .rev()
                .find(|c| c.committed_at <= created_at)
                .map_or(fallback_sha, |c| c.sha.as_str())
                .to_owned();
            let states: &[&str] = match rng.u8(..10) {
                0 => &[],
                1 => &["queued"],
                2 => &["queued", "in_progress"],
                3 | 4 => &["queued", "in_progress", "failure"],
                5 => &["in_progress", "error"],
                6 => &["queued", "in_progress", "success", "inactive"],
                _ => &["queued", "in_progress", "success"],
            };
            let mut t = created_at;
            let statuses: Vec<DeploymentStatus> = states
                .iter()
                .map(|state| {
                    t += secs(rng, 5, 900);
                    next.status += 1;
                    DeploymentStatus {
                        id: next.status,
                        node_id: format!("DES_{}", next.status),
                        state: (*state).to_owned(),
                        environment: environment.to_owned(),
                        creator: creator.clone(),
                        created_at: t,
                        updated_at: t,
                    }
                })
                .collect();
            Deployment {
                id,
                node_id: format!("DE_{id}"),
                sha,
                git_ref: "main".into(),
                environment: environment.to_owned(),
                task: "deploy".into(),
                creator,
                created_at,
                updated_at: statuses.last().map_or(created_at, |s| s.created_at),
                statuses,
            }
        })
        .collect()
}

impl Org {
    /// Generate the organisation `spec` describes. The same spec always gives
    /// the same organisation.
    pub fn generate(spec: &OrgSpec) -> Org {
        let mut rng = Rng::with_seed(spec.seed);
        let mut counters = Counters { job: JOB_IDS, deployment: DEPLOYMENT_IDS, status: STATUS_IDS };
        let members: Vec<String> = (0..spec.members.max(1)).map(|i| format!("dev-{i:03}")).collect();
        let end = spec.start + Duration::days(spec.days.max(1));
        let span = (end - spec.start).num_seconds();
        let mut ids = 1_000_000i64;
        let mut next_id = || {
            ids += 1;
            ids
        };

        let mut teams = Vec::with_capacity(spec.teams);
        for t in 0..spec.teams {
            let size = if members.len() <= 2 { members.len() } else { rng.usize(1..=members.len().min(12)) };
            let mut pool = members.clone();
            rng.shuffle(&mut pool);
            let mut current: Vec<String> = pool.iter().take(size).cloned().collect();
            current.sort();
            let added_at = current.iter().map(|_| spec.start + secs(&mut rng, 0, span / 2)).collect();
            let former = pool
                .iter()
                .skip(size)
                .take(rng.usize(0..=2))
                .map(|login| {
                    let added = spec.start + secs(&mut rng, 0, span / 2);
                    (login.clone(), added, added + secs(&mut rng, 3600, span / 2))
                })
                .collect();
            teams.push(Team {
                id: next_id(),
                slug: format!("team-{t}"),
                name: format!("Team {t}"),
                description: format!("The team number {t}"),
                privacy: if t % 3 == 2 { "secret".into() } else { "closed".into() },
                members: current,
                former_members: former,
                added_at,
            });
        }
        let team_slugs: Vec<String> = teams.iter().map(|t| t.slug.clone()).collect();

        let mut repos = Vec::with_capacity(spec.repos);
        for r in 0..spec.repos {
            let name = format!("repo-{r}");
            let created_at = spec.start - Duration::days(30);
            let mut branches = vec![Branch {
                name: "main".into(),
                head_sha: sha(&mut rng),
                pushed_at: spec.start + secs(&mut rng, 0, span),
            }];
            for b in 0..spec.branches {
                branches.push(Branch {
                    name: format!("feature/{b}"),
                    head_sha: sha(&mut rng),
                    pushed_at: spec.start + secs(&mut rng, 0, span),
                });
            }
            let mut pulls = Vec::with_capacity(spec.pulls);
            for n in 1..=spec.pulls {
                let many = r == 0 && n <= spec.pulls_with_many_reviews;
                pulls.push(generate_pull(
                    &mut rng,
                    spec,
                    &members,
                    &team_slugs,
                    &branches,
                    n as u64,
                    many,
                    &mut next_id,
                ));
            }
            let mut runs = Vec::with_capacity(spec.runs);
            for i in 0..spec.runs {
                let branch = &branches[rng.usize(..branches.len())];
                let created = spec.start + secs(&mut rng, 0, span);
                let started = created + secs(&mut rng, 1, 300);
                let (status, conclusion, updated) = match rng.u8(..10) {
                    0 => ("queued", None, created),
                    1 => ("in_progress", None, started),
                    2 | 3 => ("completed", Some("failure"), started + secs(&mut rng, 30, 3600)),
                    4 => ("completed", Some("cancelled"), started + secs(&mut rng, 30, 600)),
                    _ => ("completed", Some("success"), started + secs(&mut rng, 30, 3600)),
                };
                let w = rng.usize(..WORKFLOWS.len());
                let id = next_id();
                let mut run = WorkflowRun {
                    id,
                    node_id: format!("WFR_{id}"),
                    name: WORKFLOWS[w].into(),
                    workflow_id: 7000 + w as i64,
                    head_branch: branch.name.clone(),
                    head_sha: branch.head_sha.clone(),
                    event: if rng.bool() { "push".into() } else { "pull_request".into() },
                    status: status.into(),
                    conclusion: conclusion.map(str::to_owned),
                    run_number: i as i64 + 1,
                    run_attempt: 1,
                    actor: members[rng.usize(..members.len())].clone(),
                    created_at: created,
                    run_started_at: started,
                    updated_at: updated,
                    jobs: Vec::new(),
                };
                let mut rng_jobs = stream(spec.seed, JOBS_STREAM, id as u64);
                // 1 to 4 jobs, the same ones in every attempt.
                let n = rng_jobs.usize(1..=4);
                if rerun(&mut rng_jobs, &run) {
                    run.run_attempt = 2;
                    run.jobs = first_attempt_jobs(&mut rng_jobs, &run, n, &mut counters);
                }
                let latest = generate_jobs(&mut rng_jobs, &run, n, &mut counters);
                run.jobs.extend(latest);
                runs.push(run);
            }
            let head = &branches[0];
            let commits = generate_commits(
                &mut stream(spec.seed, COMMITS_STREAM, r as u64),
                &members,
                &name,
                spec.commits,
                (created_at.min(head.pushed_at), head.pushed_at),
                &head.head_sha,
            );
            let deployments = generate_deployments(
                &mut stream(spec.seed, DEPLOYMENTS_STREAM, r as u64),
                &members,
                &commits,
                &head.head_sha,
                spec.deployments,
                (spec.start, span),
                &mut counters,
            );
            let pushed_at = branches.iter().map(|b| b.pushed_at).max().unwrap_or(created_at);
            let updated_at = pulls.iter().map(|p: &Pull| p.updated_at).max().unwrap_or(pushed_at).max(pushed_at);
            repos.push(Repo {
                id: next_id(),
                owner: spec.org.clone(),
                name,
                default_branch: "main".into(),
                created_at,
                pushed_at,
                updated_at,
                branches,
                pulls,
                runs,
                deployments,
                commits,
            });
        }
        Org { login: spec.org.clone(), id: 900_000 + spec.seed as i64 % 1000, members, repos, teams }
    }
}

#[allow(clippy::too_many_arguments)]
fn generate_pull(
    rng: &mut Rng,
    spec: &OrgSpec,
    members: &[String],
    teams: &[String],
    branches: &[Branch],
    number: u64,
    many_reviews: bool,
    next_id: &mut impl FnMut() -> i64,
) -> Pull {
    let span = Duration::days(spec.days.max(1)).num_seconds();
    let created_at = spec.start + secs(rng, 0, span * 9 / 10);
    let author = members[rng.usize(..members.len())].clone();
    let head_sha = sha(rng);
    let state = match rng.u8(..10) {
        0..=2 => PullState::Open,
        3 | 4 => PullState::Closed,
        _ => PullState::Merged,
    };
    let n_reviews = if many_reviews { 150 } else { rng.usize(0..=spec.max_reviews) };
    let mut t = created_at;
    let mut reviews = Vec::with_capacity(n_reviews);
    for _ in 0..n_reviews {
        t += secs(rng, 60, 6 * 3600);
        let state = match rng.u8(..10) {
            0..=4 => ReviewState::Approved,
            5 | 6 => ReviewState::ChangesRequested,
            7 | 8 => ReviewState::Commented,
            _ => ReviewState::Dismissed,
        };
        let id = next_id();
        reviews.push(Review {
            id,
            node_id: format!("PRR_{id}"),
            author: members[rng.usize(..members.len())].clone(),
            state,
            submitted_at: t,
            commit_id: head_sha.clone(),
        });
    }
    let reopened = (state == PullState::Open && rng.u8(..10) == 0).then(|| {
        let closed = t + secs(rng, 60, 3600);
        t = closed + secs(rng, 60, 3600);
        (closed, t)
    });
    let (closed_at, merged_at) = match state {
        PullState::Open => (None, None),
        PullState::Closed => {
            t += secs(rng, 60, 86_400);
            (Some(t), None)
        }
        PullState::Merged => {
            t += secs(rng, 60, 86_400);
            (Some(t), Some(t))
        }
    };
    // A pull request with no other activity is edited once, so that it was updated after it was created.
    let edited_last = rng.u8(..4) == 0 || t == created_at;
    if edited_last {
        t += secs(rng, 60, 3600);
    }
    let mut labels: Vec<String> = LABELS.iter().filter(|_| rng.u8(..5) == 0).map(|l| (*l).to_owned()).collect();
    labels.sort();
    let (requested_reviewers, requested_teams) = if state == PullState::Open {
        let reviewer = members[rng.usize(..members.len())].clone();
        let team = (!teams.is_empty() && rng.bool()).then(|| teams[rng.usize(..teams.len())].clone());
        (vec![reviewer], team.into_iter().collect())
    } else {
        (Vec::new(), Vec::new())
    };
    let head = &branches[rng.usize(..branches.len())];
    Pull {
        id: next_id(),
        number,
        title: format!("Change number {number}"),
        body: format!("This pull request changes thing {number}."),
        state,
        draft: state == PullState::Open && rng.u8(..4) == 0,
        author,
        created_at,
        updated_at: t,
        closed_at,
        merged_at,
        additions: rng.i64(1..2000),
        deletions: rng.i64(0..800),
        changed_files: rng.i64(1..60),
        commits: rng.i64(1..20),
        labels,
        requested_reviewers,
        requested_teams,
        base_ref: "main".into(),
        head_ref: if head.name == "main" { format!("topic-{number}") } else { head.name.clone() },
        head_sha,
        reviews,
        reopened,
        edited_last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_org_and_another_differs() {
        let spec = OrgSpec::default();
        assert_eq!(Org::generate(&spec), Org::generate(&spec));
        assert_ne!(Org::generate(&spec), Org::generate(&OrgSpec { seed: 2, ..spec }));
    }

    #[test]
    fn pulls_have_every_state_and_consistent_times() {
        let org = Org::generate(&OrgSpec { pulls: 300, ..OrgSpec::default() });
        let pulls: Vec<&Pull> = org.repos.iter().flat_map(|r| &r.pulls).collect();
        for s in [PullState::Open, PullState::Closed, PullState::Merged] {
            assert!(pulls.iter().any(|p| p.state == s), "no {s:?} pull");
        }
        assert!(pulls.iter().any(|p| p.draft));
        for p in pulls {
            assert!(p.created_at < p.updated_at, "#{} created {} updated {}", p.number, p.created_at, p.updated_at);
            assert!(p.reviews.iter().all(|r| r.submitted_at <= p.updated_at));
            assert_eq!(p.merged_at.is_some(), p.state == PullState::Merged);
            assert_eq!(p.closed_at.is_some(), p.state != PullState::Open);
            assert!(p.closed_at.is_none_or(|c| c <= p.updated_at));
        }
    }

    #[test]
    fn the_streams_of_later_parts_leave_the_rest_unchanged() {
        // GIVEN two specs that differ only in the sizes of later parts
        let base = OrgSpec { deployments: 0, commits: 0, ..OrgSpec::default() };
        let a = Org::generate(&base);
        let b = Org::generate(&OrgSpec { deployments: 9, commits: 50, ..base });
        // THEN pull requests, branches, teams and runs with their jobs are the same
        for (ra, rb) in a.repos.iter().zip(&b.repos) {
            assert_eq!(ra.pulls, rb.pulls);
            assert_eq!(ra.branches, rb.branches);
            assert_eq!(ra.runs, rb.runs);
            assert_eq!((ra.deployments.len(), rb.deployments.len()), (0, 9));
            assert_eq!((ra.commits.len(), rb.commits.len()), (0, 50));
        }
        assert_eq!(a.teams, b.teams);
    }

    #[test]
    fn jobs_agree_with_their_run() {
        // GIVEN an org with many runs
        let org = Org::generate(&OrgSpec { repos: 2, pulls: 0, runs: 200, ..OrgSpec::default() });
        let runs: Vec<&WorkflowRun> = org.repos.iter().flat_map(|r| &r.runs).collect();
        let (mut labels, mut reruns) = (std::collections::BTreeSet::new(), 0);
        for run in &runs {
            // THEN each run has 1..=4 jobs of its own, in the run's state
            let per_attempt = run.jobs.len() / run.run_attempt as usize;
            assert!((1..=4).contains(&per_attempt), "run {} has {} jobs", run.id, run.jobs.len());
            let names =
                |a: i64| run.jobs.iter().filter(|j| j.run_attempt == a).map(|j| j.name.clone()).collect::<Vec<_>>();
            assert!(
                (1..=run.run_attempt).all(|a| names(a).len() == per_attempt && names(a) == names(1)),
                "run {}",
                run.id
            );
            assert_eq!(run.node_id, format!("WFR_{}", run.id));
            for j in &run.jobs {
                assert_eq!((j.run_id, &j.head_sha), (run.id, &run.head_sha));
                assert!((1..=run.run_attempt).contains(&j.run_attempt), "job {}", j.id);
                assert!(j.created_at <= j.started_at, "job {}", j.id);
                assert!(j.completed_at.is_none_or(|c| c > j.started_at), "job {}", j.id);
                assert_eq!(j.completed_at.is_some(), j.status == "completed");
                assert_eq!(j.conclusion.is_some(), j.status == "completed");
                assert_eq!(j.runner_name.is_some(), j.status != "queued");
                labels.insert(j.labels.clone());
            }
            match run.status.as_str() {
                "completed" => {
                    assert!(run.jobs.iter().all(|j| j.status == "completed"), "run {}", run.id);
                    assert_eq!(run.jobs.iter().filter_map(|j| j.completed_at).max(), Some(run.updated_at));
                    let (latest, earlier): (Vec<&WorkflowJob>, Vec<&WorkflowJob>) =
                        run.jobs.iter().partition(|j| j.run_attempt == run.run_attempt);
                    let failed = latest.iter().filter(|j| j.conclusion.as_deref() != Some("success")).count();
                    assert_eq!(failed, usize::from(run.conclusion.as_deref() != Some("success")), "run {}", run.id);
                    // A re-run's first attempt failed, and ended before the latest started.
                    if run.run_attempt == 2 {
                        reruns += 1;
                        assert!(
                            !earlier.is_empty() && earlier.iter().all(|j| j.completed_at < Some(run.run_started_at))
                        );
                        assert_eq!(earlier.iter().filter(|j| j.conclusion.as_deref() == Some("failure")).count(), 1);
                    }
                }
                "queued" => assert!(run.jobs.iter().all(|j| j.status == "queued" && j.queue_time().is_zero())),
                _ => assert!(run.jobs.iter().any(|j| j.status == "in_progress"), "run {}", run.id),
            }
        }
        // AND some runs were re-run (their jobs of every attempt kept)
        assert!(reruns > 0 && reruns < runs.len() / 2, "{reruns} re-runs");
        // AND the runners are GitHub-hosted and self-hosted, queued for seconds to minutes
        assert_eq!(labels.len(), 3, "{labels:?}");
        let queues: Vec<i64> = runs.iter().flat_map(|r| &r.jobs).map(|j| j.queue_time().num_seconds()).collect();
        assert!(queues.iter().any(|q| (1..60).contains(q)) && queues.iter().any(|q| *q >= 120), "{queues:?}");
        let ids: std::collections::BTreeSet<i64> = runs.iter().flat_map(|r| &r.jobs).map(|j| j.id).collect();
        assert_eq!(ids.len(), runs.iter().map(|r| r.jobs.len()).sum::<usize>(), "job ids are unique");
    }

    #[test]
    fn the_default_branch_head_is_its_newest_commit_and_deployments_have_ordered_statuses() {
        // GIVEN the default org
        let org = Org::generate(&OrgSpec::default());
        for repo in &org.repos {
            // THEN the history is oldest first and ends at the default branch's head
            assert_eq!(repo.commits.len(), 20);
            let head = &repo.branches[0];
            assert_eq!(head.name, repo.default_branch);
            let newest = repo.commits.last().unwrap();
            assert_eq!((&newest.sha, newest.committed_at), (&head.head_sha, head.pushed_at));
            assert!(repo.commits.windows(2).all(|w| w[0].committed_at <= w[1].committed_at));
            assert_eq!(repo.commits_since(None), 20);
            assert_eq!(repo.commits_since(Some(newest.committed_at)), 1);
            // AND deployments are oldest first, each status newer than the one before, updated with the newest
            assert_eq!(repo.deployments.len(), 6);
            assert!(repo.deployments.windows(2).all(|w| w[0].created_at <= w[1].created_at));
            for d in &repo.deployments {
                assert!(d.statuses.windows(2).all(|w| w[0].created_at < w[1].created_at));
                assert_eq!(d.updated_at, d.latest_status().map_or(d.created_at, |s| s.created_at));
                assert!(repo.commits.iter().any(|c| c.sha == d.sha));
            }
        }
        let states: std::collections::BTreeSet<&str> =
            org.repos.iter().flat_map(|r| &r.deployments).flat_map(|d| &d.statuses).map(|s| s.state.as_str()).collect();
        assert!(states.contains("success") && states.contains("failure"), "{states:?}");
    }

    #[test]
    fn ten_thousand_pulls_generate_quickly() {
        let started = std::time::Instant::now();
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 10_000, ..OrgSpec::default() });
        assert_eq!(org.repos[0].pulls.len(), 10_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
